"""A torch ``Dataset`` over image records."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image
from torch.utils.data import Dataset

from bdbnet.data.images import UnreadableImageError, read_image
from bdbnet.data.records import ImageRecord

__all__ = ["ImageDataset", "UnreadableImageError", "read_image"]  # the reader: bdbnet.data.images


class ImageDataset(Dataset):
    """Items are ``(image, pid, camid, index)``.

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

    def __getitem__(self, index: int) -> tuple[Any, int, int, int]:
        record = self.records[index]
        img = self.load(index)
        if self.transform is not None:
            img = self.transform(img)
        return img, record.pid, record.camid, index
