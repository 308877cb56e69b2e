"""What every inference runtime offers: the interface :class:`~bdbnet.inference.FeatureExtractor`,
evaluation and the service run a model through, whatever executes it (PyTorch, ONNX Runtime,
OpenVINO)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from bdbnet.config import Config, apply_dict
from bdbnet.models.preprocess import Preprocessing

__all__ = ["InferenceRuntime", "RuntimeInfo", "flip_average"]


@dataclass(frozen=True)
class RuntimeInfo:
    """Where a runtime's model comes from and what it is.

    Attributes:
        path: The model file.
        runtime: ``torch``, ``onnxruntime`` or ``openvino``.
        precision: What the model computes in: ``fp32``, ``bf16``, ``fp16`` (PyTorch autocast,
            fp16 weights) or ``int8`` (quantised weights and activations).
        weights_sha256: Fingerprint of the weights the features come from
            (:func:`~bdbnet.models.weights.state_dict_sha256`; an export records its source's,
            an INT8 export its own file's, as its features differ).
        config: The model's training config (a dict) when the file records it, else ``None``.
    """

    path: Path
    runtime: str
    precision: str
    weights_sha256: str = ""
    config: dict[str, Any] | None = None

    def training_config(self) -> Config | None:
        """:attr:`config` as a :class:`~bdbnet.config.Config` (``None`` when not recorded)."""
        if not self.config:
            return None
        return apply_dict(Config(), self.config, f"{self.path} (config)")


@runtime_checkable
class InferenceRuntime(Protocol):
    """A loaded model that turns normalised image batches into features."""

    info: RuntimeInfo
    preprocess: Preprocessing  # how an image becomes the model's input (read from the file)
    feature_dim: int
    device: torch.device  # where :meth:`embed` wants its input

    def embed(self, images: torch.Tensor, flip: bool = False) -> torch.Tensor:
        """``(B, D)`` float32 features on the CPU of a normalised ``B x 3 x H x W`` batch on
        :attr:`device`; ``flip`` averages with the mirrored images."""
        ...


def flip_average(run: Any, images: torch.Tensor, flip: bool) -> torch.Tensor:
    """``run(images)``, averaged with ``run`` of the mirrored images when ``flip``."""
    feats = run(images)
    if flip:
        feats = (feats + run(torch.flip(images, dims=[3]))) / 2
    return feats
