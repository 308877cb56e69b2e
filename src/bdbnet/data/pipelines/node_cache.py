"""One decoded train split per machine under torchrun (``data.pipeline=tensor``).

Every rank needs every image of the split (its share of a global batch may be any identity), so
without this the W ranks of a machine would each decode the whole split and each hold a copy
(Market-1501 at 384x128: 1.9 GB per rank). Instead the ranks of a machine map one file in shared
memory (``/dev/shm``), remove its name as soon as all of them have mapped it (so a crash leaves
nothing behind), and decode disjoint rows of it in parallel: one copy per machine, and each
rank decodes 1/W of the images with its share of the cores.

Where there is no shared-memory folder, or too little room in it (a container's default is
64 MB), every rank decodes its own copy, as a single process would, and the log says so.
``BDBNET_SHM_DIR`` names another folder (tests use a temporary one).
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from bdbnet.data.pipelines.decode import decode_rows, decode_split
from bdbnet.data.records import ImageRecord
from bdbnet.runtime.distributed import (
    DistContext,
    all_gather_objects,
    barrier,
    broadcast_object,
    shard_range,
)

log = logging.getLogger(__name__)

__all__ = ["decode_on_node", "local_world_size", "shared_memory_dir"]


def shared_memory_dir() -> Path:
    """Where the shared split lives: ``$BDBNET_SHM_DIR``, else ``/dev/shm``."""
    return Path(os.environ.get("BDBNET_SHM_DIR") or "/dev/shm")


def local_world_size(ctx: DistContext) -> int:
    """Processes on this machine (torchrun's ``LOCAL_WORLD_SIZE``)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE") or ctx.world_size)


def process_group_ready() -> bool:
    """Whether torchrun's process group is up (a :class:`DistContext` alone, as tests build
    for one rank's view, cannot coordinate with anyone)."""
    return dist.is_available() and dist.is_initialized()


def _room(folder: Path) -> int:
    try:
        stats = os.statvfs(folder)
    except OSError:
        return 0
    return stats.f_bavail * stats.f_frsize


def decode_on_node(
    records: Sequence[ImageRecord],
    recipe: Any,
    ctx: DistContext,
    threads: int | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """:func:`~bdbnet.data.pipelines.decode.decode_split` of ``records`` by ``recipe``, decoded
    once per machine into shared memory when ``ctx`` has several processes there.

    ``threads`` per process (default: this machine's cores shared among its processes, at most
    8 each). Every rank must call it (it synchronises them).
    """
    local = local_world_size(ctx)
    h, w = recipe.size
    shape = (len(records), 3, h, w)
    size = math.prod(shape)
    if not ctx.distributed or local < 2 or size == 0 or not process_group_ready():
        return decode_split(records, recipe, threads, progress)
    folder = shared_memory_dir()
    fits = all(all_gather_objects(_room(folder) >= size + (64 << 20), ctx))
    if not fits:
        if ctx.is_main:
            log.warning(
                "%s has less than the %.1f GB free the decoded train split needs (or is "
                "missing): each of the %d processes decodes its own copy",
                folder,
                size / 1e9,
                local,
            )
        return decode_split(records, recipe, threads, progress)
    path = folder / broadcast_object(f"bdbnet-split-{uuid.uuid4().hex}.u8", ctx)
    if ctx.local_rank == 0:
        images = torch.from_file(str(path), shared=True, size=size, dtype=torch.uint8)
    barrier(ctx)
    if ctx.local_rank != 0:
        images = torch.from_file(str(path), shared=True, size=size, dtype=torch.uint8)
    barrier(ctx)  # every rank has mapped it: the name can go, the memory stays until unmapped
    if ctx.local_rank == 0:
        path.unlink(missing_ok=True)
    images = images.view(shape)
    rows = shard_range(len(records), DistContext(ctx.local_rank, local))
    threads = threads or max(1, min(8, (os.cpu_count() or 1) // local))
    decode_rows(images, records, recipe.prepare, rows, threads, progress)
    barrier(ctx)
    if ctx.is_main:
        log.info(
            "decoded the train split once for the %d processes of this machine "
            "(%.2f GB in shared memory)",
            local,
            size / 1e9,
        )
    return images
