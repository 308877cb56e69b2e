"""ResNet backbones with last stride 1 and ImageNet weight loading that works offline.

ResNet-50 is the paper's backbone and the default everywhere; ResNet-18/34 exist for quick
experiments on small hardware (the CPU demo), not for reproducing the paper.
"""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn
from torchvision.models import (
    ResNet,
    ResNet18_Weights,
    ResNet34_Weights,
    ResNet50_Weights,
    resnet18,
    resnet34,
    resnet50,
)
from torchvision.models.resnet import BasicBlock, Bottleneck

from bdbnet.errors import CheckpointError

# The official code used ``resnet50(pretrained=True)``, i.e. torchvision's V1 weights.
IMAGENET_WEIGHTS = ResNet50_Weights.IMAGENET1K_V1

# name -> (torchvision constructor, ImageNet weights)
ARCHITECTURES = {
    "resnet50": (resnet50, IMAGENET_WEIGHTS),
    "resnet34": (resnet34, ResNet34_Weights.IMAGENET1K_V1),
    "resnet18": (resnet18, ResNet18_Weights.IMAGENET1K_V1),
}


class PretrainedWeightsError(CheckpointError):
    """ImageNet weights are neither cached nor downloadable, or a ``model.pretrained`` file
    cannot be used."""


class WeightsFileNotFoundError(PretrainedWeightsError, FileNotFoundError):
    """The ``model.pretrained`` file does not exist."""


class WeightsFileError(PretrainedWeightsError, ValueError):
    """The ``model.pretrained`` file is unreadable or not a state dict of the backbone."""


def _architecture(arch: str) -> tuple:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown backbone {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch]


def _display(arch: str) -> str:
    return arch.replace("resnet", "ResNet-")


def imagenet_weights_path(arch: str = "resnet50") -> Path:
    """Where torchvision caches the ImageNet weights file (``$TORCH_HOME/hub/checkpoints``)."""
    filename = os.path.basename(_architecture(arch)[1].url)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a state dict with ``weights_only=True`` (a weights file must never run code).

    Accepts plain state dicts and ``{'state_dict': ...}`` / ``{'model': ...}`` wrappers.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsFileNotFoundError(
            f"weights file not found: {path} (model.pretrained: a file, 'imagenet' or null)"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            try:
                return load_file(str(path))
            except SafetensorError as err:
                raise ValueError(str(err)) from err
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise WeightsFileError(
            f"{path}: not a readable weights file ({reason}); model.pretrained must name a "
            "state dict saved with torch.save (.pth) or a .safetensors file"
        ) from err
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise WeightsFileError(f"{path} does not contain a state dict (found {type(obj).__name__})")
    return obj


def load_imagenet_state_dict(arch: str = "resnet50") -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights of ``arch`` from the hub cache, downloading if possible."""
    weights = _architecture(arch)[1]
    cached = imagenet_weights_path(arch)
    if cached.is_file():
        return load_state_dict_file(cached)
    try:
        return weights.get_state_dict(progress=True, weights_only=True)
    except Exception as err:  # URLError, SSL errors, proxies...: all mean "offline" here
        raise PretrainedWeightsError(
            f"could not download the ImageNet {_display(arch)} weights ({err}).\n"
            f"Offline? Copy {weights.url}\n"
            f"to {cached} (or set TORCH_HOME), pass pretrained=<path to a .pth file>, "
            "or pretrained=None for random initialisation."
        ) from err


def build_resnet(
    arch: str = "resnet50",
    pretrained: str | os.PathLike[str] | None = "imagenet",
    last_stride: int = 1,
) -> ResNet:
    """torchvision ResNet ``arch`` with the stride of ``layer4`` set to ``last_stride``.

    Setting the stride on the existing first block keeps every parameter, so ImageNet weights of
    layer4 load unchanged (the official code rebuilt layer4 and copied them over: same result).

    Args:
        arch: ``"resnet50"`` (the paper), ``"resnet34"`` or ``"resnet18"``.
        pretrained: ``"imagenet"``, a path to a state-dict file, or ``None`` (random init).
        last_stride: 1 (BDB: a 24x8 map for 384x128 inputs) or 2 (plain ResNet).
    """
    net = _architecture(arch)[0]()
    if pretrained is not None:
        state = (
            load_imagenet_state_dict(arch)
            if str(pretrained) == "imagenet"
            else load_state_dict_file(pretrained)
        )
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        try:
            missing, unexpected = net.load_state_dict(state, strict=False)
        except RuntimeError as err:  # shape mismatches
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            raise WeightsFileError(
                f"{pretrained}: not a torchvision {_display(arch)} state dict "
                f"({'; '.join(lines[1:3]) or lines[0]})"
            ) from err
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise WeightsFileError(
                f"{pretrained}: not a torchvision {_display(arch)} state dict "
                f"(missing {missing[:3]}..., unexpected {list(unexpected)[:3]}...)"
            )
    first = net.layer4[0]
    # The strided convolution is conv2 in a Bottleneck (torchvision's ResNet v1.5), conv1 in a
    # BasicBlock.
    strided = first.conv2 if isinstance(first, Bottleneck) else first.conv1
    strided.stride = (last_stride, last_stride)
    first.downsample[0].stride = (last_stride, last_stride)
    return net


def build_resnet50(
    pretrained: str | os.PathLike[str] | None = "imagenet", last_stride: int = 1
) -> ResNet:
    """The paper's backbone: :func:`build_resnet` with ``arch="resnet50"``."""
    return build_resnet("resnet50", pretrained, last_stride)


def extra_block(net: ResNet) -> nn.Module:
    """A fresh residual block shaped like the backbone's last one, for the dropping branch:
    ``Bottleneck(2048, 512)`` on ResNet-50 (the official code), ``BasicBlock(512, 512)`` on
    ResNet-18/34. PyTorch's default initialisation, as in the official code."""
    channels = feature_channels(net)
    if isinstance(net.layer4[0], Bottleneck):
        return Bottleneck(channels, channels // Bottleneck.expansion)
    return BasicBlock(channels, channels)


def feature_channels(net: ResNet) -> int:
    """Channels of the ``layer4`` output (2048 for ResNet-50, 512 for ResNet-18/34)."""
    return int(net.fc.in_features)


def resnet_stem(net: ResNet) -> nn.Sequential:
    """conv1 ... layer3 of a ResNet as one module (the part shared by both branches)."""
    names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3")
    return nn.Sequential(OrderedDict((name, getattr(net, name)) for name in names))
