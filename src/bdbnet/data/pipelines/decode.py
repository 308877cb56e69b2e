"""Images to ``uint8`` tensors at a recipe's size, decoded in threads.

Both the training tensor path (:func:`decode_split`: a whole split into one tensor) and feature
extraction (:func:`decoded_batches`: a stream of batches, for evaluation and
:class:`~bdbnet.inference.FeatureExtractor`) decode here. Threads suffice because PIL releases
the GIL while it decodes and resizes, and they share memory with the caller, so nothing is
pickled. The pixels are those of the PIL path's deterministic transform (``prepare``); the
conversion to normalised floats happens later, on the device
(:func:`~bdbnet.data.pipelines.tensor.normalise`).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from bdbnet.data.images import UnreadableImageError, read_image
from bdbnet.data.records import ImageRecord

__all__ = [
    "decode_file",
    "decode_rows",
    "decode_split",
    "decoded_batches",
    "default_threads",
    "to_uint8",
]

Item = TypeVar("Item")


def default_threads() -> int:
    """Decoding threads when none are asked for: one per core, at most 8."""
    return min(8, os.cpu_count() or 1)


def to_uint8(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image as the ``3 x H x W`` ``uint8`` tensor ``v2.ToImage`` would make."""
    arr = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def decode_file(path: str, prepare: Callable[[Image.Image], Image.Image]) -> torch.Tensor:
    """:func:`~bdbnet.data.images.read_image`, then ``prepare``, as ``uint8``."""
    return to_uint8(prepare(read_image(path)))


def decode_split(
    records: Sequence[ImageRecord],
    recipe: Any,
    threads: int | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Every image of ``records`` through ``recipe.prepare`` (a
    :class:`~bdbnet.data.pipelines.tensor.TensorRecipe`), as one ``uint8`` tensor
    ``N x 3 x H x W``, decoded in ``threads`` threads."""
    h, w = recipe.size
    out = torch.empty((len(records), 3, h, w), dtype=torch.uint8)
    decode_rows(out, records, recipe.prepare, range(len(records)), threads, progress)
    return out


def decode_rows(
    out: torch.Tensor,
    records: Sequence[ImageRecord],
    prepare: Callable[[Image.Image], Image.Image],
    rows: range,
    threads: int | None = None,
    progress: bool = False,
) -> None:
    """Decode ``records[i]`` into ``out[i]`` for each ``i`` in ``rows``, in ``threads`` threads
    (several processes may fill disjoint rows of one shared tensor)."""

    def fill(i: int) -> None:
        out[i] = decode_file(str(records[i].path), prepare)

    bar = tqdm(total=len(rows), desc="decode", disable=not progress, leave=False)
    with bar, ThreadPoolExecutor(threads or default_threads()) as pool:
        for _ in pool.map(fill, rows):
            bar.update()


def decoded_batches(
    items: Sequence[Item],
    decode: Callable[[Item], torch.Tensor],
    batch_size: int,
    threads: int | None = None,
    ahead: int = 2,
) -> Iterator[list[torch.Tensor | UnreadableImageError]]:
    """``decode`` of every item, in order, one list per ``batch_size`` items.

    Decoding runs in ``threads`` threads up to ``ahead`` batches ahead of the consumer (so it
    overlaps the forward passes while host memory stays bounded). A consumer that stops early
    should ``close()`` the stream (``contextlib.closing``) so that queued work is cancelled at
    once rather than when the garbage collector finds the generator. An item that raises
    :class:`~bdbnet.data.images.UnreadableImageError` yields the error in its place, so the
    caller decides whether to skip or stop; any other exception is a bug and propagates.
    """

    def guarded(item: Item) -> torch.Tensor | UnreadableImageError:
        try:
            return decode(item)
        except UnreadableImageError as err:
            return err

    starts = iter(range(0, len(items), batch_size))
    pool = ThreadPoolExecutor(threads or default_threads())
    pending: deque[list[Future]] = deque()

    def submit() -> None:
        start = next(starts, None)
        if start is not None:
            pending.append([pool.submit(guarded, x) for x in items[start : start + batch_size]])

    try:
        for _ in range(ahead + 1):
            submit()
        while pending:
            batch = pending.popleft()
            submit()
            yield [future.result() for future in batch]
    finally:
        # Never join here: an abandoned stream is closed by the garbage collector, which may
        # run inside another thread's start-up while it holds threading's shutdown lock, and a
        # join there deadlocks. Queued work is cancelled; running decodes finish on their own.
        pool.shutdown(wait=False, cancel_futures=True)
