from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from bdbnet.data.samplers import PKBatchSampler

# 10 identities with labels 100..109; identity 100+p has counts[p] images, interleaved so that
# the indices of an identity are not contiguous.
COUNTS = [1, 2, 3, 4, 6, 1, 2, 3, 4, 6]


def make_pids() -> list[int]:
    pids = []
    remaining = list(COUNTS)
    while any(remaining):
        for p, left in enumerate(remaining):
            if left:
                pids.append(100 + p)
                remaining[p] -= 1
    return pids


PIDS = make_pids()
INDICES_OF = {pid: [i for i, x in enumerate(PIDS) if x == pid] for pid in set(PIDS)}


def batches(sampler: PKBatchSampler, epoch: int = 0) -> list[list[int]]:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_fixture_layout():
    assert len(PIDS) == sum(COUNTS) == 32
    assert [len(INDICES_OF[100 + p]) for p in range(10)] == COUNTS


@pytest.mark.parametrize("epoch", [0, 1, 7])
def test_every_batch_has_p_identities_with_k_images(epoch):
    sampler = PKBatchSampler(PIDS, num_identities=3, num_instances=4, seed=5)
    out = batches(sampler, epoch)
    assert len(out) == len(sampler) == 10 // 3
    for batch in out:
        assert len(batch) == 12
        counts = Counter(PIDS[i] for i in batch)
        assert len(counts) == 3
        assert set(counts.values()) == {4}
        # an identity's K images are contiguous in the batch (batch-hard mining relies on it
        # only through the counts, but the layout is the official one)
        per_pid = [PIDS[i] for i in batch]
        assert per_pid == [per_pid[0]] * 4 + [per_pid[4]] * 4 + [per_pid[8]] * 4


def test_epoch_is_one_pass_over_identities():
    sampler = PKBatchSampler(PIDS, num_identities=2, num_instances=4, seed=0)
    for epoch in range(5):
        pids_seen = [PIDS[b[j]] for b in batches(sampler, epoch) for j in range(0, 8, 4)]
        # 10 identities // P=2 -> 5 batches, every identity exactly once
        assert sorted(pids_seen) == list(range(100, 110))
    assert len(sampler) == 5


def test_identities_are_shuffled_between_epochs_and_all_get_used():
    sampler = PKBatchSampler(PIDS, num_identities=3, num_instances=4, seed=1)
    used = set()
    orders = set()
    for epoch in range(20):
        epoch_pids = tuple(PIDS[b[j]] for b in batches(sampler, epoch) for j in (0, 4, 8))
        assert len(set(epoch_pids)) == 9  # 3 batches x 3 identities, no identity twice
        used.update(epoch_pids)
        orders.add(epoch_pids)
    assert used == set(range(100, 110))
    assert len(orders) > 1


def test_k_distinct_images_when_identity_has_at_least_k():
    sampler = PKBatchSampler(PIDS, num_identities=2, num_instances=4, seed=3)
    seen_subsets = set()
    for epoch in range(10):
        for batch in batches(sampler, epoch):
            for start in range(0, 8, 4):
                group = batch[start : start + 4]
                pid = PIDS[group[0]]
                assert set(group) <= set(INDICES_OF[pid])
                if len(INDICES_OF[pid]) >= 4:
                    assert len(set(group)) == 4
                if pid == 104:  # 6 images: a random 4-subset
                    seen_subsets.add(frozenset(group))
    assert len(seen_subsets) > 1


def test_identities_with_fewer_than_k_images_are_sampled_with_replacement():
    sampler = PKBatchSampler(PIDS, num_identities=2, num_instances=4, seed=0)
    groups: dict[int, list[list[int]]] = {100: [], 101: []}
    for epoch in range(10):
        for batch in batches(sampler, epoch):
            for start in range(0, 8, 4):
                group = batch[start : start + 4]
                if PIDS[group[0]] in groups:
                    groups[PIDS[group[0]]].append(group)
    # identity 100 has a single image: the same index K times
    assert groups[100] and all(g == INDICES_OF[100] * 4 for g in groups[100])
    # identity 101 has two images: 4 draws from them, so repeats, and both images get used
    assert groups[101]
    assert all(len(g) == 4 and set(g) <= set(INDICES_OF[101]) for g in groups[101])
    assert {i for g in groups[101] for i in g} == set(INDICES_OF[101])


def test_same_seed_and_epoch_give_same_batches_other_epoch_or_seed_differ():
    a = PKBatchSampler(PIDS, num_identities=3, num_instances=4, seed=11)
    b = PKBatchSampler(PIDS, num_identities=3, num_instances=4, seed=11)
    assert batches(a, 4) == batches(b, 4)
    assert list(a) == list(a)  # iterating twice replays the epoch
    assert batches(a, 4) != batches(a, 5)
    c = PKBatchSampler(PIDS, num_identities=3, num_instances=4, seed=12)
    assert batches(a, 4) != batches(c, 4)


def test_order_does_not_depend_on_global_rng():
    sampler = PKBatchSampler(PIDS, num_identities=3, num_instances=4, seed=2)
    torch.manual_seed(0)
    first = batches(sampler, 1)
    torch.manual_seed(123)
    torch.rand(10)
    assert batches(sampler, 1) == first


@pytest.mark.parametrize("world_size", [2, 4])
def test_ranks_share_each_global_batch_by_whole_identities(world_size):
    full = PKBatchSampler(PIDS, num_identities=4, num_instances=4, seed=9)
    ranks = [
        PKBatchSampler(PIDS, 4, 4, seed=9, world_size=world_size, rank=r) for r in range(world_size)
    ]
    per_rank = [batches(s, 3) for s in ranks]
    assert [len(s) for s in ranks] == [len(full)] * world_size  # same number of steps
    for step, whole in enumerate(batches(full, 3)):
        shares = [rank_batches[step] for rank_batches in per_rank]
        assert [i for share in shares for i in share] == whole  # the union, in order
        for share in shares:  # P / W whole identities of K images each
            counts = Counter(PIDS[i] for i in share)
            assert len(counts) == 4 // world_size and set(counts.values()) == {4}
        owners = [{PIDS[i] for i in share} for share in shares]
        assert sum(len(o) for o in owners) == len(set().union(*owners))  # never split


def test_seeds_depend_on_the_global_position_only():
    full = batches(PKBatchSampler(PIDS, 4, 2, seed=5, with_seeds=True), 1)
    halves = [
        batches(PKBatchSampler(PIDS, 4, 2, 5, world_size=2, rank=r, with_seeds=True), 1)
        for r in range(2)
    ]
    for step, whole in enumerate(full):
        assert halves[0][step] + halves[1][step] == whole
    seeds = [seed for batch in full for _, seed in batch]
    assert len(set(seeds)) == len(seeds)  # every item of the epoch has its own seed
    assert seeds != [
        s for b in batches(PKBatchSampler(PIDS, 4, 2, 5, with_seeds=True), 2) for _, s in b
    ]  # and another one next epoch


def test_drop_last_false_keeps_the_partial_batch():
    sampler = PKBatchSampler(PIDS, num_identities=3, num_instances=2, seed=0, drop_last=False)
    out = batches(sampler, 0)
    assert len(sampler) == len(out) == 4  # ceil(10 / 3)
    assert [len(b) for b in out] == [6, 6, 6, 2]
    assert sorted({PIDS[i] for b in out for i in b}) == list(range(100, 110))


def test_docstring_example_and_tensor_pids():
    sampler = PKBatchSampler([0, 0, 1, 1, 1, 2], num_identities=2, num_instances=2)
    assert [len(b) for b in sampler] == [4]
    tensor_sampler = PKBatchSampler(torch.tensor([0, 0, 1, 1, 1, 2]), 2, 2)
    assert list(tensor_sampler) == list(sampler)


def test_works_as_dataloader_batch_sampler():
    data = TensorDataset(torch.tensor(PIDS))
    sampler = PKBatchSampler(PIDS, num_identities=2, num_instances=4, seed=0)
    loaded = [b[0].tolist() for b in DataLoader(data, batch_sampler=sampler)]
    assert loaded == [[PIDS[i] for i in b] for b in sampler]


def test_errors():
    with pytest.raises(ValueError, match="only 10 identities, fewer than P=11"):
        PKBatchSampler(PIDS, num_identities=11, num_instances=4)
    with pytest.raises(ValueError, match="num_identities >= 2"):
        PKBatchSampler(PIDS, num_identities=1, num_instances=4)
    with pytest.raises(ValueError, match="num_instances >= 1"):
        PKBatchSampler(PIDS, num_identities=2, num_instances=0)
    with pytest.raises(ValueError, match=r"rank 2 outside 0\.\.1"):
        PKBatchSampler(PIDS, num_identities=2, world_size=2, rank=2)
    with pytest.raises(ValueError, match="P=3 identities per batch cannot be shared by 2"):
        PKBatchSampler(PIDS, num_identities=3, world_size=2)
    with pytest.raises(ValueError, match="rank -1"):
        PKBatchSampler(PIDS, num_identities=2, rank=-1)
    with pytest.raises(ValueError, match="only 0 identities"):
        PKBatchSampler([], num_identities=2)
