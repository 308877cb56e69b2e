"""The one preprocessing spec: how an image becomes the network's input.

A model's features are only meaningful for inputs prepared the way it was evaluated, so the spec
travels with every model: checkpoints and safetensors files store it (``"preprocess"``), exported
ONNX / TorchScript files carry it in their metadata, every loaded model has it as
``model.preprocess``, and every path that runs a model builds its input from it -- the
evaluation's PIL transform and tensor path, :class:`~bdbnet.inference.FeatureExtractor`, export
and the service. It is plain data (JSON in files) so that a deployment outside Python can follow
it: optionally pad to a square, resize to ``size`` (antialiased ``interpolation``), scale pixels
to ``[0, 1]``, subtract ``mean`` and divide by ``std`` per channel, in ``color`` order, NCHW.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bdbnet.config import DataConfig
from bdbnet.errors import CheckpointError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Preprocessing"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the network input (see the module documentation).

    Args:
        size: ``(height, width)`` of the network input.
        pad_to_square: Pad the image with black to a centred square before resizing (the
            retrieval recipe).
        mean, std: Per-channel statistics, applied after scaling pixels to ``[0, 1]``.
        recipe: The training recipe the model comes from (``reid`` or ``retrieval``).
        interpolation: The resize filter (antialiased), as torchvision names it.
        color: Channel order of the input.

    Example:
        >>> spec = Preprocessing.from_data_config(DataConfig(height=384, width=128))
        >>> spec.size, spec.to_dict()["resize"], Preprocessing.from_dict(spec.to_dict()) == spec
        ((384, 128), [384, 128], True)
    """

    size: tuple[int, int]
    pad_to_square: bool = False
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    recipe: str = "reid"
    interpolation: str = "bilinear"
    color: str = "RGB"
    scale: float = field(default=1 / 255, repr=False)

    @classmethod
    def from_data_config(cls, cfg: DataConfig) -> Preprocessing:
        """The test preprocessing of a recipe: re-ID resizes to ``data.height x data.width``;
        retrieval pads to a square (unless ``data.test_pad_to_square`` is false, CARS196) and
        resizes to ``data.test_resize`` squared."""
        if cfg.recipe == "retrieval":
            side = cfg.test_resize
            return cls((side, side), pad_to_square=cfg.test_pad_to_square, recipe="retrieval")
        return cls((cfg.height, cfg.width), recipe=cfg.recipe)

    def with_size(self, height: int, width: int) -> Preprocessing:
        """The same preprocessing at another input size (an export's graph size)."""
        return replace(self, size=(int(height), int(width)))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in model files (``resize`` is ``[height, width]``)."""
        return {
            "recipe": self.recipe,
            "mean": list(self.mean),
            "std": list(self.std),
            "pad_to_square": self.pad_to_square,
            "resize": list(self.size),
            "interpolation": self.interpolation,
            "antialias": True,
            "color": self.color,
            "scale": self.scale,
            "layout": "NCHW",
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "the file") -> Preprocessing:
        """Read :meth:`to_dict`'s form back (files written before ``interpolation`` and
        ``color`` were recorded used bilinear and RGB); a malformed entry raises
        :class:`~bdbnet.errors.CheckpointError` naming ``source``."""
        try:
            height, width = (int(v) for v in data["resize"])
            spec = cls(
                size=(height, width),
                pad_to_square=bool(data.get("pad_to_square", False)),
                mean=tuple(float(v) for v in data.get("mean", IMAGENET_MEAN)),
                std=tuple(float(v) for v in data.get("std", IMAGENET_STD)),
                recipe=str(data.get("recipe", "reid")),
                interpolation=str(data.get("interpolation", "bilinear")),
                color=str(data.get("color", "RGB")),
                scale=float(data.get("scale", 1 / 255)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(
                f"{source}: malformed preprocessing entry {dict(data)!r} ({err}); expected "
                "resize [height, width], mean and std"
            ) from err
        if len(spec.mean) != 3 or len(spec.std) != 3 or min(spec.size) < 1:
            raise CheckpointError(
                f"{source}: malformed preprocessing entry {dict(data)!r}: mean and std need 3 "
                "values, resize two positive sizes"
            )
        return spec
