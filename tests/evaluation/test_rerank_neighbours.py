"""The symmetric neighbour pass of re-ranking: every row's nearest items, ties by index, from
tiles computed once per pair of blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bdbnet.evaluation.rerank_neighbours import (
    pack_keys,
    sort_rows,
    squared_tile,
    symmetric_nearest,
    unpack_keys,
)


def test_keys_order_by_value_then_item_and_round_trip():
    values = torch.tensor([[0.5, 0.25, 0.5, -0.0, 2.0]])
    items = torch.tensor([[7, 3, 2, 9, 1]])
    got_values, got_items = unpack_keys(sort_rows(pack_keys(values, items)))
    assert got_items.tolist() == [[9, 3, 2, 7, 1]]  # 0 first, the two 0.5 by item
    assert got_values.tolist() == [[0.0, 0.25, 0.5, 0.5, 2.0]]


@pytest.mark.parametrize("sizes", [[7, 9, 4], [20], [3, 3, 3, 3, 3, 5]])
def test_each_blocks_nearest_equal_a_stable_argsort_of_the_tiles(sizes):
    """Blocks of several sizes, some smaller than ``fetch``; integer features give exact ties.
    The ``fetch`` smallest distances are exact, and so are the items closer than the
    ``fetch``-th distance in stable-argsort order (items tied with it may be any of them)."""
    rng = np.random.default_rng(sum(sizes))
    x = torch.from_numpy(rng.integers(0, 3, size=(sum(sizes), 3)).astype(np.float32))
    sqn = x.pow(2).sum(1)
    bounds = np.cumsum([0, *sizes])
    blocks = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
    fetch = 6
    full = squared_tile(x, sqn, slice(None), slice(None)).clamp(min=0.0)
    full.fill_diagonal_(0.0)
    seen = []
    for s, e, values, items, top in symmetric_nearest(x, sqn, blocks, fetch):
        seen.append((s, e))
        values, order = torch.sort(values, dim=1, stable=True)
        items = items.gather(1, order)
        for r in range(s, e):
            row = full[r].numpy()
            want = np.argsort(row, kind="stable")[:fetch]
            got = sorted(zip(values[r - s].tolist(), items[r - s].tolist()))
            assert [v for v, _ in got] == row[want].tolist(), r
            closer = row[want] < row[want[-1]]
            assert [i for _, i in got][: closer.sum()] == want[closer].tolist(), r
            assert all(row[i] == v for v, i in got)
            assert top[r - s] == full[r].max()
    assert seen == blocks
