"""``bdbnet datasets``: the supported datasets, one's expected layout, or a copy validated."""

from __future__ import annotations

import argparse
from typing import Any

from bdbnet.cli.support import add_command


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = add_command(
        subparsers,
        "datasets",
        "list datasets; with NAME --root: validate a copy",
        """
        Without NAME: every registered dataset with a one-line description. With NAME: its
        expected folder layout and published statistics. With NAME --root DIR: the counts of
        the copy at DIR against the published ones, and every image opened once.
        """,
        """
        bdbnet datasets
        bdbnet datasets market1501 --root /data/market1501
        """,
    )
    p.add_argument("name", nargs="?", default=None, help="a dataset name (default: list them all)")
    p.add_argument("--root", default=None, help="a copy of dataset NAME to validate")
    p.add_argument(
        "--skip-image-check", action="store_true", help="count the files without opening them"
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bdbnet.data import get_dataset_class, list_datasets
    from bdbnet.reporting import format_table

    if args.name is None:
        for name in list_datasets():
            cls = get_dataset_class(name)
            print(f"{name:22s} {(cls.__doc__ or '').strip().splitlines()[0]}")
        return 0
    header = ["split", "images", "identities", "cameras"]
    cls = get_dataset_class(args.name)
    if args.root is None:
        print(f"{args.name}: expected layout under --root\n{cls.layout}")
        if cls.expected_stats:
            rows = [[k, s.images, s.identities, s.cameras] for k, s in cls.expected_stats.items()]
            print("published statistics:")
            print(format_table(header, rows))
        print(f"validate a copy with: bdbnet datasets {args.name} --root DIR")
        return 0
    dataset = cls(args.root)
    stats = dataset.splits.stats()
    rows = [[split, s.images, s.identities, s.cameras] for split, s in stats.items()]
    print(f"{args.name} at {dataset.root}")
    print(format_table(header, rows))
    if dataset.splits.task == "retrieval" and dataset.splits.gallery is dataset.splits.query:
        print("query = gallery: the test split, leave-one-out (Recall@K)")
    problems = dataset.compare_with_published()
    for line in problems:
        print(f"warning: {line}")
    if not problems and dataset.expected_stats:
        print("counts match the published statistics")
    if not args.skip_image_check:
        from bdbnet.data.checks import report_unreadable

        report_unreadable(dataset.splits)
    return 0
