"""What the trainer needs of a data pipeline: a :class:`BatchSource`.

The trainer asks a source for its number of steps, tells it the epoch, iterates its
``(images, labels)`` batches and stores its state in checkpoints. The PIL/DataLoader path
(:mod:`bdbnet.data.pipelines.pil`) and the device-resident tensor path
(:mod:`bdbnet.data.pipelines.tensor`) both are one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class BatchSource(Protocol):
    """An epoch-indexed stream of training batches."""

    def __len__(self) -> int:
        """Steps per epoch (the same on every rank)."""
        ...

    def set_epoch(self, epoch: int) -> None:
        """Select epoch ``epoch`` (0-based): its order and augmentation."""
        ...

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(images, labels)`` of each step of the current epoch."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
