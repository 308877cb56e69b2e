"""Image transforms of the two official recipes (torchvision v2), built from the config
(training) or from the model's preprocessing spec (test: :func:`inference_transform`).

* re-ID: resize 384x128, horizontal flip, normalise, Cutout (p=0.5, 64x64, filled with 0 after
  normalisation, i.e. with the mean colour);
* retrieval: pad to square, resize 256, random crop 224, flip, normalise, Random Erasing p=0.5
  (:class:`RandomErasing`: area 0.02-0.4, aspect ratio uniform in [0.3, 1/0.3], 100 attempts,
  filled with 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from PIL import Image
from torchvision.transforms import v2

from bdbnet.config import DataConfig
from bdbnet.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing


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


class RandomErasing:
    """Random Erasing (Zhong et al., 2017) with the official BDB retrieval parameters.

    With probability ``p``, up to ``attempts`` times: draw an area fraction uniformly in
    ``area`` and an aspect ratio (height / width) uniformly in ``ratio`` -- uniform in the ratio
    itself, so about 77% of the rectangles are taller than wide --, round ``sqrt(a * r)`` and
    ``sqrt(a / r)`` (times the image size) to the rectangle's height and width, and erase it at a
    uniform position if both are strictly smaller than the image's; else try again. If every
    attempt fails the image is returned unchanged. torchvision's ``RandomErasing`` cannot express
    this (its aspect ratio is log-uniform, it gives up after 10 attempts), hence this class. Uses
    torch's RNG, so seeding torch makes augmentation reproducible.
    """

    def __init__(
        self,
        p: float = 0.5,
        area: tuple[float, float] = (0.02, 0.4),
        ratio: tuple[float, float] = (0.3, 1 / 0.3),
        attempts: int = 100,
        fill: float = 0.0,
    ) -> None:
        if not (0 < area[0] <= area[1] and 0 < ratio[0] <= ratio[1] and attempts >= 1):
            raise ValueError(f"invalid RandomErasing({area=}, {ratio=}, {attempts=})")
        self.p, self.area, self.ratio, self.attempts, self.fill = p, area, ratio, attempts, fill

    def get_params(self, height: int, width: int) -> tuple[int, int, int, int] | None:
        """``(top, left, h, w)`` of the rectangle to erase in a ``height x width`` image, or
        ``None`` when no attempt fits."""
        (a0, a1), (r0, r1) = self.area, self.ratio
        for _ in range(self.attempts):
            u = torch.rand(2).tolist()
            target = (a0 + (a1 - a0) * u[0]) * height * width
            aspect = r0 + (r1 - r0) * u[1]
            h = round(math.sqrt(target * aspect))
            w = round(math.sqrt(target / aspect))
            if h < height and w < width:
                top = int(torch.randint(0, height - h + 1, ()).item())
                left = int(torch.randint(0, width - w + 1, ()).item())
                return top, left, h, w
        return None

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if torch.rand(()).item() >= self.p:
            return img
        box = self.get_params(*img.shape[-2:])
        if box is None:
            return img
        top, left, h, w = box
        img = img.clone()
        img[..., top : top + h, left : left + w] = self.fill
        return img

    def __repr__(self) -> str:
        return (
            f"RandomErasing(p={self.p}, area={self.area}, ratio={self.ratio}, "
            f"attempts={self.attempts}, fill={self.fill})"
        )


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
    return inference_transform(Preprocessing(size, mean=tuple(mean), std=tuple(std)))


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
        steps.append(RandomErasing(p=erasing_p))
    return v2.Compose(steps)


def retrieval_test_transform(
    resize: int = 256,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    pad_to_square: bool = True,
) -> v2.Compose:
    """Pad to square and resize (256; 224 for Stanford Online Products). CARS196 is resized
    without padding (``pad_to_square=False``), as the official code does."""
    spec = Preprocessing((resize, resize), pad_to_square, tuple(mean), tuple(std), "retrieval")
    return inference_transform(spec)


def prepare_transform(spec: Preprocessing) -> v2.Compose:
    """The deterministic part of the test preprocessing, PIL image to PIL image at
    ``spec.size``: padding to a square where the spec asks, then the antialiased resize. The
    PIL test transform, the tensor path and :class:`~bdbnet.inference.FeatureExtractor` all
    resize through it, so their pixels are the same."""
    if spec.interpolation != "bilinear":
        raise ValueError(f"unsupported resize interpolation {spec.interpolation!r}")
    steps: list = [PadToSquare()] if spec.pad_to_square else []
    steps.append(v2.Resize(spec.size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True))
    return v2.Compose(steps)


def inference_transform(spec: Preprocessing) -> v2.Compose:
    """PIL image -> the normalised ``3 x H x W`` network input of ``spec``."""
    steps = prepare_transform(spec).transforms
    return v2.Compose([*steps, *_to_normalised_tensor(spec.mean, spec.std)])


def build_train_transform(cfg: DataConfig) -> v2.Compose:
    """The training transform of ``cfg.recipe`` with the config's sizes and augmentation."""
    if cfg.recipe == "retrieval":
        return retrieval_train_transform(cfg.resize, cfg.width, cfg.flip, cfg.erasing_prob)
    return reid_train_transform((cfg.height, cfg.width), cfg.flip, cfg.cutout_prob, cfg.cutout_size)


def build_test_transform(cfg: DataConfig) -> v2.Compose:
    """The test transform of the config's recipe (:meth:`Preprocessing.from_data_config`)."""
    return inference_transform(Preprocessing.from_data_config(cfg))
