"""bdbnet: the Batch DropBlock Network for person re-identification and metric learning."""

from __future__ import annotations

from typing import Any

from bdbnet.version import __version__

__all__ = ["FeatureExtractor", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``import bdbnet`` (and ``bdbnet --help``) does not import torch.
    if name == "FeatureExtractor":
        from bdbnet.inference.extractor import FeatureExtractor

        return FeatureExtractor
    raise AttributeError(f"module 'bdbnet' has no attribute {name!r}")
