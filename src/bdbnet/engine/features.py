"""Batched, gradient-free feature extraction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from bdbnet.data.image_dataset import ImageDataset
from bdbnet.data.records import ImageRecord
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


def extract_features(
    model: torch.nn.Module,
    records: Sequence[ImageRecord],
    transform: Callable[[Any], torch.Tensor],
    device: torch.device,
    batch_size: int = 128,
    flip: bool = False,
    amp: str = "none",
    workers: int = 0,
    channels_last: bool = False,
    progress: bool = True,
    desc: str = "extract",
) -> torch.Tensor:
    """Features of ``records`` (in order) as an ``(N, D)`` float32 tensor on the CPU."""
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
    if not chunks:
        return torch.empty(0, getattr(model, "feature_dim", 0))
    return torch.cat(chunks)
