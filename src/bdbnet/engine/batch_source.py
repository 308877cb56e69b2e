"""Batch sources: what the trainer needs of a data pipeline, and the DataLoader-based one.

The trainer asks a source for its number of steps, tells it the epoch, iterates its
``(images, labels)`` batches and stores its state in checkpoints. The PIL/DataLoader pipeline
below is one implementation; a device-resident tensor pipeline is another, plugged in the same
way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import torch
from torch.utils.data import DataLoader, Dataset

from bdbnet.data.samplers import PKBatchSampler, derived_seed


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


class LoaderBatchSource:
    """P x K batches through a ``DataLoader`` (decode and augment in worker processes).

    Batches are a pure function of ``(seed, epoch)``: the sampler's order, each item's
    augmentation from its own seed (``with_seeds``), the loader's generator reseeded per
    epoch. So a resumed epoch replays exactly and no state needs storing; workers are not
    persistent for the same reason.
    """

    def __init__(
        self,
        dataset: Dataset,
        sampler: PKBatchSampler,
        workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
    ) -> None:
        self.sampler = sampler
        self.seed = seed
        self.loader = DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=pin_memory,
            generator=torch.Generator(),
        )

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        self.loader.generator.manual_seed(derived_seed(self.seed, epoch))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels, *_ in self.loader:
            yield images, labels

    def state_dict(self) -> dict[str, Any]:
        return {}  # everything follows from (seed, epoch)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
