"""Batched, gradient-free feature extraction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from bdbnet.data.image_dataset import ImageDataset
from bdbnet.data.records import ImageRecord
from bdbnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from bdbnet.engine.runtime import autocast, eval_mode


@torch.inference_mode()
def embed_batch(
    model: torch.nn.Module,
    images: torch.Tensor,
    flip: bool = False,
    amp: str = "none",
    channels_last: bool = False,
) -> torch.Tensor:
    """Eval-mode features of one batch, in float32; ``flip`` averages with the mirrored image."""
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with autocast(images.device, amp):
        feats = model(images).float()
        if flip:
            feats = (feats + model(torch.flip(images, dims=[3])).float()) / 2
    return feats


def stack_features(chunks: list[torch.Tensor], model: torch.nn.Module) -> torch.Tensor:
    """The batches' features as one ``(N, D)`` tensor (``(0, D)`` for no images)."""
    if not chunks:
        return torch.empty(0, getattr(model, "feature_dim", 0))
    return torch.cat(chunks)


def extract_features(
    model: torch.nn.Module,
    records: Sequence[ImageRecord] | torch.Tensor,
    transform: Callable[[Any], torch.Tensor] | None,
    device: torch.device,
    batch_size: int = 128,
    flip: bool = False,
    amp: str = "none",
    workers: int = 0,
    channels_last: bool = False,
    progress: bool = True,
    desc: str = "extract",
) -> torch.Tensor:
    """Features of ``records`` (in order) as an ``(N, D)`` float32 tensor on the CPU.

    ``records`` may also be a pre-decoded ``uint8`` tensor ``N x 3 x H x W`` (for example from
    :func:`~bdbnet.data.pipelines.tensor.decode_split` with the test recipe's resize): then
    ``transform`` is unused and :func:`extract_tensor_features` normalises on the device.
    """
    if isinstance(records, torch.Tensor):
        return extract_tensor_features(
            model, records, device, batch_size, flip, amp, channels_last, progress, desc
        )
    loader = DataLoader(
        ImageDataset(records, transform),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator(),  # leave the global RNG untouched (resume determinism)
    )
    chunks = []
    with eval_mode(model):
        for images, *_ in tqdm(loader, desc=desc, disable=not progress, leave=False):
            images = images.to(device, non_blocking=True)
            chunks.append(embed_batch(model, images, flip, amp, channels_last).cpu())
    return stack_features(chunks, model)


def extract_tensor_features(
    model: torch.nn.Module,
    images: torch.Tensor,
    device: torch.device,
    batch_size: int = 128,
    flip: bool = False,
    amp: str = "none",
    channels_last: bool = False,
    progress: bool = True,
    desc: str = "extract",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """Features of the ``uint8`` images ``N x 3 x H x W`` (on the CPU or on ``device``), in
    order, as an ``(N, D)`` float32 tensor on the CPU: each batch goes to the device as
    ``uint8`` and is converted and normalised there, by the operations of the PIL path's
    ``ToDtype`` and ``Normalize`` (so its input is bit-equal to the PIL path's)."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"need N x 3 x H x W uint8 images, got {images.dtype} {tuple(images.shape)}"
        )
    from bdbnet.data.pipelines.tensor import channel_statistics, normalise

    mean_t, std_t = channel_statistics(mean, std, device)
    pin = device.type == "cuda" and images.device.type == "cpu"
    chunks = []
    starts = range(0, images.shape[0], batch_size)
    with eval_mode(model):
        for start in tqdm(starts, desc=desc, disable=not progress, leave=False):
            batch = images[start : start + batch_size]
            if pin:
                batch = batch.pin_memory()
            batch = batch.to(device, non_blocking=True)
            x = normalise(batch, mean_t, std_t)
            chunks.append(embed_batch(model, x, flip, amp, channels_last).cpu())
    return stack_features(chunks, model)


def extract_decoded_features(
    model: torch.nn.Module,
    records: Sequence[ImageRecord],
    cfg: Any,
    device: torch.device,
    batch_size: int = 128,
    flip: bool = False,
    amp: str = "none",
    workers: int = 0,
    channels_last: bool = False,
    progress: bool = True,
    desc: str = "extract",
    transform: Any = None,
    chunk: int = 4096,
) -> torch.Tensor:
    """``data.pipeline=tensor`` evaluation: ``chunk`` images at a time are decoded in threads
    by the test recipe's resize (:func:`~bdbnet.data.pipelines.tensor.test_recipe_from_config`
    of the :class:`~bdbnet.config.Config` ``cfg``), then converted and normalised on the device;
    the features equal the PIL path's (``transform``, unused here). Chunks bound the host memory
    (4096 Market-1501 images: 0.6 GB of uint8)."""
    from bdbnet.data.pipelines.tensor import decode_split, test_recipe_from_config

    recipe = test_recipe_from_config(cfg.data)
    parts = []
    for start in range(0, len(records), chunk):
        images = decode_split(records[start : start + chunk], recipe, threads=workers or None)
        parts.append(
            extract_tensor_features(
                model, images, device, batch_size, flip, amp, channels_last, progress, desc
            )
        )
    return stack_features(parts, model)
