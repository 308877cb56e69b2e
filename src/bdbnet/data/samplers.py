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


def derived_seed(seed: int, index: int) -> int:
    """The seed of item ``index`` (an epoch, a step) of a run seeded by ``seed``: one formula
    for the sampler's and loader's per-epoch generators and the per-step drop rectangles.

    >>> derived_seed(0, 7), derived_seed(2, 7)
    (7, 2000013)
    """
    return (seed * 1_000_003 + index) % (2**63 - 1)


def sample_seed(seed: int, epoch: int, batch: int, position: int) -> int:
    """The augmentation seed of the item at ``position`` of global batch ``batch`` of ``epoch``.

    A pure function of where the item sits in the *global* batch, so an image is augmented the
    same whichever process loads it, in whatever worker, after whatever resume.
    """
    mixed = ((seed * 1_000_003 + epoch) * 1_000_033 + batch) * 1_000_037 + position
    return mixed % (2**63 - 1)


class PKBatchSampler(Sampler[list[int]]):
    """Yield batches of ``num_identities * num_instances`` dataset indices.

    The order depends only on ``(seed, epoch)`` (call :meth:`set_epoch`, as with
    ``DistributedSampler``), so a resumed run replays the same batches, and no RNG state needs
    to be saved.

    Distributed (``world_size > 1``): the global batch stays P x K, the one the single-process
    sampler draws, and rank ``r`` takes its ``r``-th share of ``P / world_size`` whole
    identities (an identity is never split across ranks); the union over ranks is the global
    batch, and every rank runs the same number of steps.

    Args:
        pids: The identity of every dataset item (``dataset[i]`` has identity ``pids[i]``).
        num_identities: P, identities per (global) batch (official: 32).
        num_instances: K, images per identity (official: 4).
        seed: Base seed of the per-epoch generator.
        drop_last: Drop the final batch when it has fewer than P identities.
        world_size, rank: Number of processes sharing each batch, and this one's rank.
        with_seeds: Yield ``(index, augmentation_seed)`` pairs (see :func:`sample_seed`)
            instead of bare indices, for datasets that augment each item from its own seed.

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
        world_size: int = 1,
        rank: int = 0,
        with_seeds: bool = False,
    ) -> None:
        if num_identities < 2 or num_instances < 1:
            raise ValueError("need num_identities >= 2 and num_instances >= 1 per batch")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
        if num_identities % world_size:
            raise ValueError(
                f"P={num_identities} identities per batch cannot be shared by {world_size} "
                "processes: choose data.num_identities divisible by the number of processes"
            )
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
        self.world_size = world_size
        self.rank = rank
        self.with_seeds = with_seeds
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self) -> list[list[int]]:
        """Every batch of the current epoch, whole (what a single process trains on)."""
        gen = torch.Generator().manual_seed(derived_seed(self.seed, self.epoch))
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

    def __iter__(self) -> Iterator[list]:
        share = self.num_identities // self.world_size * self.num_instances
        for number, batch in enumerate(self.global_batches()):
            # A partial last batch (drop_last=False) is shared the same way; a rank may get
            # fewer items, never a split identity.
            start = self.rank * share
            mine = batch[start : start + share]
            if self.with_seeds:
                yield [
                    (index, sample_seed(self.seed, self.epoch, number, start + offset))
                    for offset, index in enumerate(mine)
                ]
            else:
                yield mine

    def __len__(self) -> int:
        per_batch = self.num_identities
        if self.drop_last:
            return len(self.pid_list) // per_batch
        return -(-len(self.pid_list) // per_batch)
