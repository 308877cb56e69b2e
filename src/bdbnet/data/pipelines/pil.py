"""The PIL data path (``data.pipeline=pil``): training batches through a ``DataLoader`` whose
worker processes decode and augment each image with the torchvision transform of the recipe.
One :class:`~bdbnet.data.pipelines.source.BatchSource`; the device-resident tensor path
(:mod:`bdbnet.data.pipelines.tensor`) is the other."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from bdbnet.data.samplers import PKBatchSampler, derived_seed


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
