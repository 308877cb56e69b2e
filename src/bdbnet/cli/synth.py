"""``bdbnet synth``: write the procedural re-ID dataset in the Market-1501 layout."""

from __future__ import annotations

import argparse
from typing import Any

from bdbnet.cli.support import POSITIVE, add_command, bounded_float
from bdbnet.data.synthetic.domains import DOMAINS, domain_help


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = add_command(
        subparsers,
        "synth",
        "write the synthetic re-ID dataset (Market-1501 layout)",
        """
        Write a procedural pedestrian re-ID dataset (bounding_box_train/, query/,
        bounding_box_test/) that trains and evaluates like Market-1501: identities seen by
        several cameras, occluders, distractors and junk images. The same arguments always
        write the same bytes.

        --domain N writes another camera network with a stated, controlled shift (scenes,
        lighting, colour cast, resolution, viewpoint mix) and other people, so that the domain
        gap can be measured: train on domain 0, evaluate on domain 1 (written to another root).
        """,
        """
        bdbnet synth --root data/synthetic --train-ids 200 --test-ids 200 --seed 0
        bdbnet synth --root data/synthetic-d1 --domain 1
        """,
    )
    p.add_argument("--root", required=True, help="dataset folder to write")
    p.add_argument("--train-ids", type=POSITIVE, default=200, help="identities of the train split")
    p.add_argument(
        "--test-ids", type=POSITIVE, default=200, help="identities of the query/gallery splits"
    )
    p.add_argument("--cameras", type=POSITIVE, default=6, help="number of cameras")
    p.add_argument(
        "--occlusion", type=bounded_float(0, 1), default=0.3, help="probability of an occluder"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    p.add_argument(
        "--domain",
        type=int,
        default=0,
        choices=sorted(DOMAINS),
        metavar="N",
        help=f"camera network, 0 by default; {domain_help()}",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bdbnet.data.synthetic import generate_synthetic_reid
    from bdbnet.outputs import ensure_output_dir

    ensure_output_dir(args.root, "dataset folder")
    summary = generate_synthetic_reid(
        args.root,
        train_ids=args.train_ids,
        test_ids=args.test_ids,
        cameras=args.cameras,
        occlusion=args.occlusion,
        seed=args.seed,
        domain=args.domain,
        overwrite=args.overwrite,
        progress=True,
    )
    print(summary)
    print(f"domain {args.domain}: {summary.domain_description}")
    return 0
