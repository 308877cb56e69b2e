"""ResNet-50 backbone with last stride 1 and ImageNet weight loading that works offline."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet, ResNet50_Weights, resnet50

# The official code used ``resnet50(pretrained=True)``, i.e. torchvision's V1 weights.
IMAGENET_WEIGHTS = ResNet50_Weights.IMAGENET1K_V1


class PretrainedWeightsError(RuntimeError):
    """ImageNet weights are neither cached nor downloadable."""


def imagenet_weights_path() -> Path:
    """Where torchvision caches the ImageNet ResNet-50 file (``$TORCH_HOME/hub/checkpoints``)."""
    filename = os.path.basename(IMAGENET_WEIGHTS.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a state dict with ``weights_only=True`` (a weights file must never run code).

    Accepts plain state dicts and ``{'state_dict': ...}`` / ``{'model': ...}`` wrappers.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"{path} does not contain a state dict (found {type(obj).__name__})")
    return obj


def load_imagenet_state_dict() -> dict[str, torch.Tensor]:
    """torchvision's ResNet-50 ImageNet weights from the hub cache, downloading if possible."""
    cached = imagenet_weights_path()
    if cached.is_file():
        return load_state_dict_file(cached)
    try:
        return IMAGENET_WEIGHTS.get_state_dict(progress=True, weights_only=True)
    except Exception as err:  # URLError, SSL errors, proxies...: all mean "offline" here
        raise PretrainedWeightsError(
            f"could not download the ImageNet ResNet-50 weights ({err}).\n"
            f"Offline? Copy {IMAGENET_WEIGHTS.url}\n"
            f"to {cached} (or set TORCH_HOME), pass pretrained=<path to a .pth file>, "
            "or pretrained=None for random initialisation."
        ) from err


def build_resnet50(
    pretrained: str | os.PathLike[str] | None = "imagenet", last_stride: int = 1
) -> ResNet:
    """torchvision ResNet-50 with the stride of ``layer4`` set to ``last_stride``.

    Setting the stride on the existing first block keeps every parameter, so ImageNet weights of
    layer4 load unchanged (the official code rebuilt layer4 and copied them over: same result).

    Args:
        pretrained: ``"imagenet"``, a path to a state-dict file, or ``None`` (random init).
        last_stride: 1 (BDB: a 24x8 map for 384x128 inputs) or 2 (plain ResNet).
    """
    net = resnet50()
    if pretrained is not None:
        state = (
            load_imagenet_state_dict()
            if str(pretrained) == "imagenet"
            else load_state_dict_file(pretrained)
        )
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise ValueError(
                f"{pretrained}: not a torchvision ResNet-50 state dict "
                f"(missing {missing[:3]}..., unexpected {list(unexpected)[:3]}...)"
            )
    first = net.layer4[0]
    first.conv2.stride = (last_stride, last_stride)
    first.downsample[0].stride = (last_stride, last_stride)
    return net


def resnet_stem(net: ResNet) -> nn.Sequential:
    """conv1 ... layer3 of a ResNet as one module (the part shared by both branches)."""
    names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3")
    return nn.Sequential(OrderedDict((name, getattr(net, name)) for name in names))
