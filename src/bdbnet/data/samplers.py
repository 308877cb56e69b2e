"""P x K identity sampling: every batch holds P identities with K images each.

Batch-hard triplet mining needs positives and negatives in every batch, so batches are built
from identities, not from shuffled images. As in the official BDB code an *epoch* is one pass
over the identities (K images each, drawn with replacement when an identity has fewer than K).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class PKBatchSampler(Sampler[list[int]]):
    """Yield batches of ``num_identities * num_instances`` dataset indices.

    The order depends only on ``(seed, epoch)`` (call :meth:`set_epoch`, as with
    ``DistributedSampler``), so a resumed run replays the same batches, and no RNG state needs
    to be saved. With ``num_replicas > 1`` each rank takes every ``num_replicas``-th batch, which
    keeps all K images of an identity on one rank.

    Args:
        pids: The identity of every dataset item (``dataset[i]`` has identity ``pids[i]``).
        num_identities: P, identities per batch (official: 32).
        num_instances: K, images per identity (official: 4).
        seed: Base seed of the per-epoch generator.
        drop_last: Drop the final batch when it has fewer than P identities.

    Example:
        >>> sampler = PKBatchSampler([0, 0, 1, 1, 1, 2], num_identities=2, num_instances=2)
        >>> [len(b) for b in sampler]
        [4]
    """

    def __init__(
        self,
        pids: Sequence[int],
        num_identities: int = 32,
        num_instances: int = 4,
        seed: int = 0,
        drop_last: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if num_identities < 2 or num_instances < 1:
            raise ValueError("need num_identities >= 2 and num_instances >= 1 per batch")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside 0..{num_replicas - 1}")
        self.index_by_pid: dict[int, list[int]] = defaultdict(list)
        for index, pid in enumerate(pids):
            self.index_by_pid[int(pid)].append(index)
        self.pid_list = sorted(self.index_by_pid)
        if len(self.pid_list) < num_identities and drop_last:
            raise ValueError(
                f"only {len(self.pid_list)} identities, fewer than P={num_identities} per batch"
            )
        self.num_identities = num_identities
        self.num_instances = num_instances
        self.seed = seed
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.pid_list), generator=gen).tolist()
        flat: list[int] = []
        for i in order:
            items = self.index_by_pid[self.pid_list[i]]
            if len(items) >= self.num_instances:
                picks = torch.randperm(len(items), generator=gen)[: self.num_instances]
            else:
                picks = torch.randint(len(items), (self.num_instances,), generator=gen)
            flat.extend(items[j] for j in picks.tolist())
        size = self.num_identities * self.num_instances
        batches = [flat[i : i + size] for i in range(0, len(flat), size)]
        if batches and self.drop_last and len(batches[-1]) < size:
            batches.pop()
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all_batches()
        usable = len(batches) - len(batches) % self.num_replicas
        yield from batches[self.rank : usable : self.num_replicas]

    def __len__(self) -> int:
        per_batch = self.num_identities
        n = (
            len(self.pid_list) // per_batch
            if self.drop_last
            else -(-len(self.pid_list) // per_batch)
        )
        return n // self.num_replicas
