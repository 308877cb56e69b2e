"""Which device a run uses, and how its kernels are chosen."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from bdbnet.errors import DeviceError


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available; an explicit ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise DeviceError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return device


def configure_backends(device: torch.device, deterministic: bool = False) -> None:
    """Let cuDNN pick the fastest convolution algorithms on GPUs (fixed input sizes make the
    search pay off after the first steps), unless the run asked for deterministic kernels."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Temporarily switch to eval mode and restore the previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
