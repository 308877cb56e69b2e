"""A torch ``Dataset`` over image records."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from bdbnet.data.images import UnreadableImageError, read_image
from bdbnet.data.records import ImageRecord

__all__ = ["ImageDataset", "UnreadableImageError", "read_image"]  # the reader: bdbnet.data.images


class ImageDataset(Dataset):
    """Items are ``(image, pid, camid, index)``.

    ``dataset[i]`` augments with torch's global generator; ``dataset[(i, seed)]`` (what
    :class:`~bdbnet.data.samplers.PKBatchSampler` yields with ``with_seeds``) augments from a
    generator seeded by ``seed`` and leaves the global one untouched, so an item's augmentation
    depends on where it sits in the global batch, not on the process or worker that loads it.

    Args:
        records: The split to serve.
        transform: Applied to the RGB PIL image.
        cache: Keep decoded images in memory (small datasets such as the synthetic demo, where
            JPEG decoding would otherwise be a noticeable share of a CPU training step).
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        transform: Callable[[Image.Image], Any] | None = None,
        cache: bool = False,
    ) -> None:
        self.records = list(records)
        self.transform = transform
        self._cache: dict[int, Image.Image] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.records)

    @property
    def pids(self) -> list[int]:
        return [r.pid for r in self.records]

    def load(self, index: int) -> Image.Image:
        if self._cache is None:
            return read_image(self.records[index].path)
        if index not in self._cache:
            self._cache[index] = read_image(self.records[index].path)
        return self._cache[index]

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[Any, int, int, int]:
        index, seed = item if isinstance(item, tuple) else (item, None)
        record = self.records[index]
        img = self.load(index)
        if self.transform is not None:
            if seed is None:
                img = self.transform(img)
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.default_generator.manual_seed(seed)
                    img = self.transform(img)
        return img, record.pid, record.camid, index
