"""Image transforms of the two official recipes (torchvision v2).

* re-ID: resize 384x128, horizontal flip, normalise, Cutout (p=0.5, 64x64, filled with 0 after
  normalisation, i.e. with the mean colour);
* retrieval: pad to square, resize 256, random crop 224, flip, normalise, Random Erasing p=0.5.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Cutout:
    """Zero a ``size x size`` square lying fully inside the image, with probability ``p``.

    Applied after normalisation, so 0 is the dataset mean (the official recipe). Uses torch's
    RNG, so seeding torch makes augmentation reproducible.
    """

    def __init__(self, p: float = 0.5, size: int = 64, fill: float = 0.0) -> None:
        self.p, self.size, self.fill = p, size, fill

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if torch.rand(()).item() >= self.p:
            return img
        h, w = img.shape[-2:]
        if self.size > h or self.size > w:
            return img
        top = int(torch.randint(0, h - self.size + 1, ()).item())
        left = int(torch.randint(0, w - self.size + 1, ()).item())
        img = img.clone()
        img[..., top : top + self.size, left : left + self.size] = self.fill
        return img

    def __repr__(self) -> str:
        return f"Cutout(p={self.p}, size={self.size}, fill={self.fill})"


class PadToSquare:
    """Pad the shorter side symmetrically with black so the aspect ratio survives resizing."""

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        side = max(w, h)
        if w == h:
            return img
        canvas = Image.new(img.mode, (side, side))
        canvas.paste(img, ((side - w) // 2, (side - h) // 2))
        return canvas

    def __repr__(self) -> str:
        return "PadToSquare()"


def _to_normalised_tensor(mean: Sequence[float], std: Sequence[float]) -> list:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]


def reid_train_transform(
    size: tuple[int, int] = (384, 128),
    flip: bool = True,
    cutout_p: float = 0.5,
    cutout_size: int = 64,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """The official re-ID training transform (``size`` is height x width)."""
    steps: list = [v2.Resize(size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True)]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    steps += _to_normalised_tensor(mean, std)
    if cutout_p > 0:
        steps.append(Cutout(cutout_p, cutout_size))
    return v2.Compose(steps)


def reid_test_transform(
    size: tuple[int, int] = (384, 128),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """Resize and normalise (no flip, as the official evaluation)."""
    return v2.Compose(
        [v2.Resize(size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True)]
        + _to_normalised_tensor(mean, std)
    )


def retrieval_train_transform(
    resize: int = 256,
    crop: int = 224,
    flip: bool = True,
    erasing_p: float = 0.5,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """The official metric-learning training transform."""
    steps: list = [PadToSquare(), v2.Resize((resize, resize), antialias=True), v2.RandomCrop(crop)]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    steps += _to_normalised_tensor(mean, std)
    if erasing_p > 0:
        steps.append(v2.RandomErasing(p=erasing_p, value=0))
    return v2.Compose(steps)


def retrieval_test_transform(
    resize: int = 256,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """Pad to square and resize (256; 224 for Stanford Online Products)."""
    return v2.Compose(
        [PadToSquare(), v2.Resize((resize, resize), antialias=True)]
        + _to_normalised_tensor(mean, std)
    )
