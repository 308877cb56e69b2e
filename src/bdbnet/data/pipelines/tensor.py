"""The device-resident tensor data path (``data.pipeline=tensor``).

The train split is decoded once (in threads) into one ``uint8`` tensor ``N x 3 x H x W`` by the
deterministic part of the PIL recipe -- :func:`~bdbnet.data.images.read_image` and the very same
torchvision resize (re-ID), or pad to square and resize (retrieval) -- so those pixels are
bit-equal to the PIL path's. The tensor is kept in RAM (``data.cache=none|ram``; under torchrun
one copy per machine, :mod:`bdbnet.data.pipelines.node_cache`) or on the device
(``data.cache=device``).

:class:`TensorBatchSource` then follows the same :class:`~bdbnet.data.samplers.PKBatchSampler`
order, gathers each batch's rows and augments the whole batch at once on the device: flip,
conversion to float and normalisation (torchvision's own functions, so without random parts the
batch is bit-equal to the PIL path's), then Cutout (re-ID) or random crop and Random Erasing
(retrieval). Every random parameter of step ``s`` of epoch ``e`` comes from one generator on the
device seeded by ``derived_seed(derived_seed(seed, e), s)`` and is drawn for the whole *global*
batch, of which a rank keeps its share: a resumed epoch replays exactly, ranks augment their
items as a single process would, and nothing in the augmentation waits for the host.

The random draws are not those of the PIL path (same distributions, other numbers).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torchvision.transforms.v2 import functional as F

from bdbnet.config import DataConfig
from bdbnet.data.pipelines.decode import decode_split
from bdbnet.data.records import ImageRecord
from bdbnet.data.samplers import PKBatchSampler, derived_seed
from bdbnet.data.transforms import prepare_transform
from bdbnet.errors import ConfigError
from bdbnet.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

__all__ = [
    "TensorBatchSource",
    "TensorRecipe",
    "decode_split",
    "recipe_from_config",
]


class TensorRecipe:
    """What the tensor path does: the deterministic ``prepare`` (PIL image -> PIL image at the
    stored size) and the batched random part's parameters.

    Args:
        size: Stored ``(height, width)``.
        flip_p: Probability of a horizontal flip.
        cutout_p, cutout_size: Cutout (re-ID; after normalisation, filled with 0).
        crop: Random crop ``(height, width)`` (retrieval), or ``None``.
        erasing_p: Random Erasing probability (retrieval: the parameters of
            :class:`~bdbnet.data.transforms.RandomErasing`).
    """

    def __init__(
        self,
        size: tuple[int, int],
        flip_p: float = 0.5,
        cutout_p: float = 0.0,
        cutout_size: int = 64,
        pad_to_square: bool = False,
        crop: tuple[int, int] | None = None,
        erasing_p: float = 0.0,
        erasing_area: tuple[float, float] = (0.02, 0.4),
        erasing_ratio: tuple[float, float] = (0.3, 1 / 0.3),
        erasing_attempts: int = 100,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.size = size
        self.flip_p, self.cutout_p, self.cutout_size = flip_p, cutout_p, cutout_size
        self.pad_to_square, self.crop = pad_to_square, crop
        self.erasing_p, self.erasing_area = erasing_p, erasing_area
        self.erasing_ratio, self.erasing_attempts = erasing_ratio, erasing_attempts
        self.mean, self.std = list(mean), list(std)
        # The PIL path's padding and resize, object for object.
        spec = Preprocessing(size, pad_to_square, tuple(mean), tuple(std))
        self.prepare = prepare_transform(spec)
        self._statistics: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_preprocessing(cls, spec: Preprocessing) -> TensorRecipe:
        """The inference recipe of a model's preprocessing spec: the same padding and resize
        as the PIL test transform, no random part."""
        return cls(spec.size, 0.0, pad_to_square=spec.pad_to_square, mean=spec.mean, std=spec.std)

    def statistics(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``mean`` and ``std`` as ``3 x 1 x 1`` float tensors on ``device`` (copied once)."""
        if device not in self._statistics:
            self._statistics[device] = channel_statistics(self.mean, self.std, device)
        return self._statistics[device]


def channel_statistics(
    mean: Sequence[float], std: Sequence[float], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean`` and ``std`` as ``3 x 1 x 1`` float tensors on ``device``."""
    as_tensor = lambda v: torch.tensor(list(v), dtype=torch.float32).view(-1, 1, 1).to(device)  # noqa: E731
    return as_tensor(mean), as_tensor(std)


def normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``uint8`` images to normalised floats by the PIL path's ``ToDtype`` and ``Normalize``
    operations (so bit-equal to it), with statistics already on the images' device."""
    return F.to_dtype(images, torch.float32, scale=True).sub_(mean).div_(std)


def recipe_from_config(cfg: DataConfig) -> TensorRecipe:
    """The tensor path's version of :func:`~bdbnet.data.transforms.build_train_transform`."""
    flip_p = 0.5 if cfg.flip else 0.0
    if cfg.recipe == "retrieval":
        return TensorRecipe(
            (cfg.resize, cfg.resize),
            flip_p,
            pad_to_square=True,
            crop=(cfg.width, cfg.width),
            erasing_p=cfg.erasing_prob,
        )
    if cfg.recipe != "reid":
        raise ConfigError(f"data.recipe must be one of reid, retrieval; got {cfg.recipe!r}")
    return TensorRecipe((cfg.height, cfg.width), flip_p, cfg.cutout_prob, cfg.cutout_size)


def _spans(start: torch.Tensor, length: torch.Tensor, extent: int) -> torch.Tensor:
    """``B x extent`` mask of ``start <= i < start + length`` (per row)."""
    i = torch.arange(extent, device=start.device)
    return (i >= start[:, None]) & (i < (start + length)[:, None])


def _uniform_int(u: torch.Tensor, count: torch.Tensor | int) -> torch.Tensor:
    """Uniform integers in ``[0, count)`` from uniforms ``u`` in ``[0, 1)`` (no host copy)."""
    value = torch.floor(u * count).long()
    if isinstance(count, int):
        return value.clamp(0, count - 1)
    return torch.minimum(value, count - 1).clamp_min(0)


def augment(
    images: torch.Tensor, recipe: TensorRecipe, generator: torch.Generator, total: int, start: int
) -> torch.Tensor:
    """The random part of ``recipe`` on the ``uint8`` batch ``images`` (on the generator's
    device): the parameters are drawn for a batch of ``total`` items, of which ``images`` are
    items ``start .. start + len(images)``. Returns the normalised float batch."""
    device = images.device
    n = images.shape[0]
    draws = 9 + (2 * recipe.erasing_attempts if recipe.erasing_p > 0 else 0)
    u = torch.rand((total, draws), generator=generator, device=device)[start : start + n]
    if recipe.crop is not None:
        ch, cw = recipe.crop
        h, w = images.shape[-2:]
        top = _uniform_int(u[:, 4], h - ch + 1)
        left = _uniform_int(u[:, 5], w - cw + 1)
        rows = (top[:, None] + torch.arange(ch, device=device))[:, None, :, None]
        cols = (left[:, None] + torch.arange(cw, device=device))[:, None, None, :]
        batch = torch.arange(n, device=device)[:, None, None, None]
        chan = torch.arange(images.shape[1], device=device)[None, :, None, None]
        images = images[batch, chan, rows, cols]
    if recipe.flip_p > 0:
        flip = (u[:, 0] < recipe.flip_p)[:, None, None, None]
        images = torch.where(flip, images.flip(-1), images)
    x = normalise(images, *recipe.statistics(device))  # no host-to-device copies per batch
    h, w = x.shape[-2:]
    if recipe.cutout_p > 0 and recipe.cutout_size <= h and recipe.cutout_size <= w:
        size = recipe.cutout_size
        apply = u[:, 1] < recipe.cutout_p
        top = _uniform_int(u[:, 2], h - size + 1)
        left = _uniform_int(u[:, 3], w - size + 1)
        length = torch.full_like(top, size)
        mask = _spans(top, length, h)[:, :, None] & _spans(left, length, w)[:, None, :]
        x.masked_fill_((mask & apply[:, None, None])[:, None], 0.0)
    if recipe.erasing_p > 0:
        x = _random_erasing(x, recipe, u[:, 6], u[:, 7], u[:, 8], u[:, 9:])
    return x


def _random_erasing(
    x: torch.Tensor,
    recipe: TensorRecipe,
    u_apply: torch.Tensor,
    u_top: torch.Tensor,
    u_left: torch.Tensor,
    u: torch.Tensor,
) -> torch.Tensor:
    """Batched :class:`~bdbnet.data.transforms.RandomErasing`: the first of ``attempts``
    rectangles (area and aspect ratio uniform) that fits, at a uniform position; none when no
    attempt fits."""
    height, width = x.shape[-2:]
    (a0, a1), (r0, r1) = recipe.erasing_area, recipe.erasing_ratio
    attempts = recipe.erasing_attempts
    target = (a0 + (a1 - a0) * u[:, 0 : 2 * attempts : 2].double()) * height * width
    aspect = r0 + (r1 - r0) * u[:, 1 : 2 * attempts : 2].double()
    h = torch.round(torch.sqrt(target * aspect)).long()
    w = torch.round(torch.sqrt(target / aspect)).long()
    fits = (h < height) & (w < width)
    first = fits.long().argmax(dim=1, keepdim=True)  # first fitting attempt (0 if none)
    h, w = h.gather(1, first)[:, 0], w.gather(1, first)[:, 0]
    apply = (u_apply < recipe.erasing_p) & fits.any(dim=1)
    top = _uniform_int(u_top, height - h + 1)
    left = _uniform_int(u_left, width - w + 1)
    mask = _spans(top, h, height)[:, :, None] & _spans(left, w, width)[:, None, :]
    return x.masked_fill_((mask & apply[:, None, None])[:, None], 0.0)


class TensorBatchSource:
    """P x K batches gathered from a pre-decoded ``uint8`` tensor and augmented on the device
    (see the module documentation). Implements
    :class:`~bdbnet.data.pipelines.pil.BatchSource`.

    Args:
        images: ``N x 3 x H x W`` ``uint8`` (from :func:`decode_split`), on the CPU or on
            ``device``.
        pids: The identity of every row.
        sampler: The batch order (bare indices, ``with_seeds=False``).
        recipe: The random part.
        device: Where batches are augmented and yielded.
        seed: The run's seed.
    """

    def __init__(
        self,
        images: torch.Tensor,
        pids: Sequence[int],
        sampler: PKBatchSampler,
        recipe: TensorRecipe,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[0] != len(pids):
            raise ValueError(f"need N x 3 x H x W uint8 images for {len(pids)} pids")
        if sampler.with_seeds:
            raise ValueError("TensorBatchSource needs a sampler without with_seeds")
        self.device = torch.device(device)
        self.images = images
        self.pids = torch.as_tensor(list(pids), dtype=torch.long)
        self.sampler, self.recipe, self.seed = sampler, recipe, seed
        self.epoch = 0
        # each batch is gathered into pinned memory, so the split itself needs no pinned copy
        self._pin = self.device.type == "cuda" and images.device.type == "cpu"

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def step_generator(self, step: int) -> torch.Generator:
        """The generator of step ``step`` (0-based, within the epoch) of the current epoch."""
        gen = torch.Generator(device=self.device)
        return gen.manual_seed(derived_seed(derived_seed(self.seed, self.epoch), step))

    def gather(self, indices: list[int]) -> torch.Tensor:
        """The ``uint8`` rows ``indices``, on the device."""
        index = torch.as_tensor(indices, dtype=torch.long)
        if self.images.device.type != "cpu":
            if self.images.device.type == "cuda":
                index = index.pin_memory()  # so that the copy is truly asynchronous
            return self.images.index_select(0, index.to(self.images.device, non_blocking=True))
        if not self._pin:
            return self.images.index_select(0, index).to(self.device)
        shape = (len(indices), *self.images.shape[1:])
        rows = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        torch.index_select(self.images, 0, index, out=rows)
        return rows.to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        s = self.sampler
        total = s.num_identities * s.num_instances
        start = s.rank * (s.num_identities // s.world_size * s.num_instances)
        for step, indices in enumerate(s):
            batch = self.gather(indices)
            images = augment(batch, self.recipe, self.step_generator(step), total, start)
            yield images, self.pids[torch.as_tensor(indices, dtype=torch.long)]

    def state_dict(self) -> dict[str, Any]:
        return {}  # everything follows from (seed, epoch)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def build_tensor_source(
    records: Sequence[ImageRecord],
    cfg: DataConfig,
    sampler: PKBatchSampler,
    device: torch.device,
    seed: int,
    progress: bool = False,
    images: torch.Tensor | None = None,
) -> TensorBatchSource:
    """The tensor path over ``records``: their ``images`` as decoded by ``cfg``'s recipe
    (:func:`recipe_from_config`; under torchrun the engine decodes them once per machine,
    :func:`~bdbnet.data.pipelines.node_cache.decode_on_node`), or, without them, decoded here
    in ``cfg.workers`` threads (default: up to 8); kept where ``cfg.cache`` says (``none`` and
    ``ram``: in RAM; ``device``: on ``device``)."""
    recipe = recipe_from_config(cfg)
    if images is None:
        images = decode_split(records, recipe, cfg.workers or None, progress)
    if cfg.cache == "device":
        images = images.to(device)
    return TensorBatchSource(images, [r.pid for r in records], sampler, recipe, device, seed)
