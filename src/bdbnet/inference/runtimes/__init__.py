"""Inference runtimes: one interface (:class:`InferenceRuntime`) over PyTorch, ONNX Runtime and
OpenVINO, chosen from the model file by :func:`open_runtime`.

``runtime="auto"`` picks by the file: an ``.onnx`` runs in ONNX Runtime, an OpenVINO IR
``.xml`` in OpenVINO, PyTorch weights (our ``.pt``, ``.safetensors``, the official
``.pth.tar``) in PyTorch. Every runtime reads the model's preprocessing spec from the file, so
the same image gives the same features (up to the runtime's arithmetic) whatever runs it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from bdbnet.config import RUNTIME_CHOICES
from bdbnet.errors import CheckpointNotFoundError, ConfigError
from bdbnet.inference.runtimes.base import InferenceRuntime, RuntimeInfo
from bdbnet.runtime.device import resolve_device

__all__ = ["RUNTIMES", "RUNTIME_CHOICES", "InferenceRuntime", "RuntimeInfo", "open_runtime"]

RUNTIMES = RUNTIME_CHOICES[1:]  # torch, onnxruntime, openvino
_BY_SUFFIX = {".onnx": "onnxruntime", ".xml": "openvino"}
_EXPORT_FORMAT = {"onnxruntime": "onnx", "openvino": "openvino", "torch": "safetensors"}
_KIND = {"onnxruntime": "an ONNX model", "openvino": "an OpenVINO IR", "torch": "PyTorch weights"}


def runtime_for(path: str | os.PathLike[str]) -> str:
    """The runtime ``auto`` picks for a model file (by its suffix)."""
    return _BY_SUFFIX.get(Path(path).suffix.lower(), "torch")


def open_runtime(
    path: str | os.PathLike[str],
    runtime: str = "auto",
    device: str | torch.device = "auto",
    amp: str = "auto",
    channels_last: bool = True,
) -> InferenceRuntime:
    """Load the model file ``path`` into ``runtime`` (``auto``: :func:`runtime_for`).

    ``amp`` and ``channels_last`` apply to PyTorch (``amp`` also sets OpenVINO's CPU
    precision: ``none`` is fp32). A missing file is a
    :class:`~bdbnet.errors.CheckpointNotFoundError`; a file
    the runtime cannot run, a :class:`~bdbnet.errors.CheckpointError` or
    :class:`~bdbnet.errors.ConfigError` naming it.
    """
    if runtime not in RUNTIME_CHOICES:
        raise ConfigError(f"runtime must be one of {', '.join(RUNTIME_CHOICES)}; got {runtime!r}")
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}")
    chosen = runtime_for(path) if runtime == "auto" else runtime
    if chosen == "openvino" and device == "auto":
        device = "cpu"  # OpenVINO runs on the CPU here, whatever GPU the machine has
    device = resolve_device(device) if isinstance(device, str) else device
    wanted = runtime_for(path)
    if chosen != wanted:
        raise ConfigError(
            f"runtime {chosen!r} cannot run {path} ({_KIND[wanted]}): use --runtime auto, or "
            f"export it for {chosen} (bdbnet export --format {_EXPORT_FORMAT[chosen]})"
        )
    if chosen == "onnxruntime":
        from bdbnet.inference.runtimes.onnx_model import OnnxRuntime

        return OnnxRuntime(path, device)
    if chosen == "openvino":
        if device.type != "cpu":
            raise ConfigError("the OpenVINO runtime runs on the CPU here; use --device cpu")
        from bdbnet.inference.runtimes.openvino_model import OpenVinoRuntime

        return OpenVinoRuntime(path, device, amp)
    from bdbnet.inference.runtimes.torch_model import TorchRuntime

    return TorchRuntime(path, device, amp, channels_last)
