"""bdbnet: the Batch DropBlock Network for person re-identification and metric learning."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
