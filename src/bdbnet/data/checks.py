"""Open every image of a dataset before any work starts, so a bad file fails in seconds.

``bdbnet datasets NAME --root DIR`` lists the unreadable files; ``bdbnet train`` and ``bdbnet
evaluate`` refuse to start while any image of the splits they use cannot be read (their
``--skip-image-check`` flag skips this). Images are decoded with the one reader
(:func:`bdbnet.data.images.read_image`) in a thread pool: PIL releases the GIL while decoding.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from bdbnet.config import DataConfig
from bdbnet.data.images import read_image
from bdbnet.data.records import DatasetSplits, ImageRecord
from bdbnet.errors import DataError, ImageError
from bdbnet.outputs import ensure_output_dir

__all__ = [
    "check_images",
    "check_splits",
    "check_test_split",
    "report_unreadable",
    "unreadable_summary",
]

log = logging.getLogger(__name__)


def _problem(path: str) -> str | None:
    try:
        read_image(path)
    except ImageError as err:
        return str(err.__cause__ or err)
    return None


def check_images(
    paths: Iterable[str], workers: int | None = None, progress: bool = True, desc: str = "check"
) -> list[tuple[str, str]]:
    """``(path, reason)`` for every file of ``paths`` that cannot be decoded, in input order.

    Each distinct path is opened once, by ``workers`` threads (default: up to 8).
    """
    from tqdm.auto import tqdm

    unique = list(dict.fromkeys(str(p) for p in paths))
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = pool.map(_problem, unique, chunksize=16)
        reasons = list(
            tqdm(results, total=len(unique), desc=desc, unit="img", disable=not progress)
        )
    return [(p, r) for p, r in zip(unique, reasons) if r is not None]


def unreadable_summary(bad: Sequence[tuple[str, str]], shown: int = 5) -> str:
    """One line naming the first ``shown`` unreadable files and their reasons."""
    head = "; ".join(f"{path} ({reason})" for path, reason in bad[:shown])
    more = f"; and {len(bad) - shown} more" if len(bad) > shown else ""
    return head + more


def check_splits(
    splits: DatasetSplits,
    names: Sequence[str] = ("train", "query", "gallery"),
    workers: int | None = None,
    progress: bool = True,
    open_images: bool = True,
) -> None:
    """Raise when a split in ``names`` is empty (:class:`~bdbnet.errors.DataError`) or, with
    ``open_images``, holds an unreadable image (:class:`~bdbnet.errors.ImageError`, listing
    them)."""
    where = f"{splits.name} at {splits.root}"
    records: list[ImageRecord] = []
    for name in names:
        split = getattr(splits, name)
        if not split:
            raise DataError(
                f"the {name} split of {where} is empty: nothing to "
                f"{'train on' if name == 'train' else 'evaluate'}; check the dataset folder "
                f"(bdbnet datasets {splits.name} --root {splits.root})"
            )
        records.extend(split)
    if not open_images:
        return
    bad = check_images((r.path for r in records), workers, progress)
    if bad:
        raise ImageError(
            f"{len(bad)} image(s) of {where} cannot be read: {unreadable_summary(bad)}. Remove "
            "or replace them (or pass --skip-image-check to fail at the first one instead)"
        )


def report_unreadable(splits: DatasetSplits) -> None:
    """``bdbnet datasets NAME --root DIR``: open every image, print the unreadable ones and
    raise :class:`~bdbnet.errors.ImageError` if there are any."""
    records = [*splits.train, *splits.query, *splits.gallery]
    bad = check_images((r.path for r in records), desc="open images")
    total = len({r.path for r in records})
    for path, reason in bad:
        log.info("unreadable: %s (%s)", path, reason)
    if bad:
        raise ImageError(
            f"{len(bad)} of the {total} images of {splits.name} at {splits.root} cannot be "
            "read (listed above); remove or replace them"
        )
    log.info("all %d images open", total)


def check_training_run(
    splits: DatasetSplits,
    cfg: DataConfig,
    output: str | os.PathLike[str],
    open_images: bool = True,
    progress: bool = True,
    others: Sequence[DatasetSplits] = (),
) -> None:
    """What a training run checks before its first step: a writable run folder, enough
    identities for P, non-empty splits and, with ``open_images``, every image readable; also
    the test splits of ``others`` (evaluation targets besides the training data's own)."""
    ensure_output_dir(output, "run folder")
    if splits.num_train_pids < cfg.num_identities:
        raise DataError(
            f"data.num_identities={cfg.num_identities} but the train split of "
            f"{splits.root} has only {splits.num_train_pids} identities; lower "
            "data.num_identities (P of the P x K batch)"
        )
    check_splits(splits, ("train", "query", "gallery"), open_images=open_images, progress=progress)
    for target in others:
        check_test_split(target, open_images=open_images, progress=progress)


def check_test_split(
    splits: DatasetSplits, open_images: bool = True, progress: bool = True
) -> None:
    """What an evaluation reads: the query and gallery images (once where they are one list,
    as in the retrieval benchmarks)."""
    names = ("query",) if splits.gallery is splits.query else ("query", "gallery")
    check_splits(splits, names, open_images=open_images, progress=progress)
