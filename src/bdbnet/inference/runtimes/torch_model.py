"""The PyTorch runtime: our checkpoints, exported safetensors weights and the official BDB
``*.pth.tar``, run eagerly (autocast where the hardware computes bf16 natively, NHWC)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from bdbnet.inference.embed import embed_batch
from bdbnet.inference.runtimes.base import RuntimeInfo
from bdbnet.models.loading import load_trained_model
from bdbnet.models.weights import state_dict_sha256
from bdbnet.runtime.precision import resolve_amp


class TorchRuntime:
    """A trained model in eager PyTorch.

    Args:
        path: One of our checkpoints, ``.safetensors`` weights or an official ``*.pth.tar``.
        device: Where it runs.
        amp: ``none | bf16 | fp16 | auto`` autocast (``auto``: bf16 only where computed
            natively).
        channels_last: NHWC convolutions.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        device: torch.device,
        amp: str = "auto",
        channels_last: bool = True,
    ) -> None:
        self.device = device
        self.model, cfg = load_trained_model(path, device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.amp, self.channels_last = amp, channels_last
        self.preprocess = self.model.preprocess
        self.feature_dim = int(self.model.feature_dim)
        resolved = resolve_amp(device, amp)
        self.info = RuntimeInfo(
            path=Path(path),
            runtime="torch",
            precision="fp32" if resolved == "none" else resolved,
            weights_sha256=state_dict_sha256(self.model.state_dict()),
            config=cfg.to_dict(),
        )

    def embed(self, images: torch.Tensor, flip: bool = False) -> torch.Tensor:
        return embed_batch(self.model, images, flip, self.amp, self.channels_last).cpu()
