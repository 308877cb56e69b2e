"""Extract the features of many images into a gallery, in chunks, on one process or shared
among the ranks of ``torchrun`` (``torchrun --nproc-per-node N -m bdbnet extract ...``).

Why chunks: a camera network's crops are millions of images. Each chunk's features are handed
to the gallery as soon as they exist, so a Milvus gallery holds everything but the chunk in
flight when a run is killed; the next run skips the paths already indexed (no duplicates, no
gaps). Under torchrun every rank extracts a contiguous shard of each chunk (whole batches, as
:func:`~bdbnet.runtime.distributed.shard_range` cuts them) and rank 0 alone writes: the
embedded engine (a ``.db`` folder) is one process's file, and one writer keeps the rows in
image order.

Example:
    >>> report = fill_gallery(extractor, paths, write=gallery_writer(gallery))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from bdbnet.inference.extractor import Extraction, FeatureExtractor
from bdbnet.inference.index import labels_from_paths
from bdbnet.runtime.distributed import DistContext, all_gather_objects, shard_range

__all__ = ["CHUNK_IMAGES", "FillReport", "fill_gallery", "gallery_writer"]

CHUNK_IMAGES = 4096  # images per chunk (all ranks together): ~25 MB of 1536-d features


@dataclass
class FillReport:
    """What a fill did: rows written, and the files that could not be read (with why)."""

    added: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


def fill_gallery(
    extractor: FeatureExtractor,
    paths: Sequence[str],
    write: Callable[[Extraction], None] | None,
    ctx: DistContext | None = None,
    chunk: int | None = None,
) -> FillReport:
    """Extract ``paths`` chunk by chunk and pass each chunk's :class:`Extraction` (in the
    order of ``paths``, unreadable files left out) to ``write``, on rank 0 only (``write``
    may be ``None`` elsewhere). Every rank must call it with the same ``paths``; every rank
    gets the same report. ``chunk``: images per chunk (default :data:`CHUNK_IMAGES`)."""
    from tqdm.auto import tqdm

    ctx = ctx or DistContext()
    chunk = chunk or CHUNK_IMAGES
    report = FillReport()
    before = extractor.progress
    bar = tqdm(total=len(paths), desc="extract", unit="img", disable=not (before and ctx.is_main))
    extractor.progress = False  # one bar over every chunk, on rank 0
    try:
        for start in range(0, len(paths), max(chunk, 1)):
            part = list(paths[start : start + chunk])
            mine = shard_range(len(part), ctx, block=extractor.batch_size)
            local = extractor.extract(part[mine.start : mine.stop]) if len(mine) else None
            done = _joined(all_gather_objects(_portable(local), ctx))
            if ctx.is_main and done.paths and write is not None:
                write(done)
            report.added += len(done.paths)
            report.skipped += done.skipped
            bar.update(len(part))
    finally:
        extractor.progress = before
        bar.close()
    return report


def gallery_writer(gallery: Any, labelled: bool | None = None) -> Callable[[Extraction], None]:
    """A ``write`` for :func:`fill_gallery` that adds to a Milvus gallery, with identities and
    cameras parsed from the file names when the gallery records them."""
    labelled = gallery.labelled if labelled is None else labelled

    def write(extraction: Extraction) -> None:
        labels = labels_from_paths(extraction.paths) if labelled else None
        gallery.add(
            extraction.features,
            extraction.paths,
            pids=labels[0].tolist() if labels else None,
            camids=labels[1].tolist() if labels else None,
        )

    return write


def _joined(shards: list[tuple[np.ndarray, list[str], list]]) -> Extraction:
    """The ranks' shards of a chunk, in rank order (= the chunk's order)."""
    features = [s[0] for s in shards if len(s[0])]
    return Extraction(
        torch.from_numpy(np.concatenate(features)) if features else _empty(),
        [p for s in shards for p in s[1]],
        [k for s in shards for k in s[2]],
    )


def _portable(extraction: Extraction | None) -> tuple[np.ndarray, list[str], list]:
    """An extraction as plain, picklable arrays (sent between ranks)."""
    if extraction is None:
        return _empty().numpy(), [], []
    features = extraction.features.detach().float().cpu().numpy()
    return features, list(extraction.paths), list(extraction.skipped)


def _empty() -> torch.Tensor:
    return torch.zeros((0, 0), dtype=torch.float32)
