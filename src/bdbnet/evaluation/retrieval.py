"""Metric-learning retrieval metrics: Recall@K and MAP@R, block by block.

Used for CUB-200-2011, Cars196, Stanford Online Products (60,502 x 60,502) and In-Shop. Like the
re-ID evaluator, nothing here builds the full distance matrix or sorts a row: each block of
query rows gets its distances computed, the ranks of its same-label items counted
(:mod:`bdbnet.evaluation.reid`), and is dropped.

Conventions
-----------
* ``gallery_feats=None`` is the leave-one-out protocol of CUB/Cars/SOP: every item queries all
  the others. The query itself is excluded *by index*, never by distance, so exact duplicates of
  a query stay in its list (and count as hits when their label matches).
* Ties in distance are broken by gallery index, as everywhere in :mod:`bdbnet.evaluation`.
* Recall@K is the share of *all* queries with a same-label item among their K nearest (a query
  without any same-label item counts as a miss). MAP@R (Musgrave et al., "A Metric Learning
  Reality Check", 2020) averages over the queries that have at least one same-label item.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from bdbnet.evaluation.distance import (
    FEATURE_BLOCK_ELEMENTS,
    ArrayLike,
    Metric,
    as_tensor,
    iter_pairwise_distance,
)
from bdbnet.evaluation.positive_ranks import Block, block_rows, positive_ranks, ragged_pairs

__all__ = ["evaluate_retrieval", "map_at_r", "recall_at_k"]


class _LabelIndex:
    """Gallery items grouped by label, to list each query's same-label items without a loop."""

    def __init__(self, g_labels: np.ndarray) -> None:
        self.order = np.argsort(g_labels, kind="stable")
        self.sorted = g_labels[self.order]

    def pairs(self, q_labels: np.ndarray, self_offset: int | None) -> tuple[np.ndarray, ...]:
        """``(row, col)`` of every same-label item of each query row, the query itself excluded."""
        lo = np.searchsorted(self.sorted, q_labels, side="left")
        hi = np.searchsorted(self.sorted, q_labels, side="right")
        rows, cols = ragged_pairs(hi - lo, lo, self.order)
        if self_offset is not None:
            keep = cols != rows + self_offset
            rows, cols = rows[keep], cols[keep]
        return rows, cols


def _labels(x: ArrayLike, name: str, n: int) -> np.ndarray:
    t = as_tensor(x).reshape(-1)
    if t.numel() != n:
        raise ValueError(f"{name} has {t.numel()} entries, expected {n}")
    return t.cpu().numpy().astype(np.int64)


def _first_positive(
    block: Block, rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nearest positive (smallest distance, then smallest index) as (rows, cols)."""
    num_rows = block.shape[0]
    d = block.gather(rows, cols)
    best = np.full(num_rows, np.inf, dtype=d.dtype)
    np.minimum.at(best, rows, d)
    at_best = d == best[rows]
    big = np.iinfo(np.int64).max
    col = np.full(num_rows, big, dtype=np.int64)
    np.minimum.at(col, rows[at_best], cols[at_best])
    has = col != big
    return np.flatnonzero(has), col[has]


def evaluate_retrieval(
    query_feats: ArrayLike,
    query_labels: ArrayLike,
    gallery_feats: ArrayLike | None = None,
    gallery_labels: ArrayLike | None = None,
    ks: Iterable[int] = (1, 2, 4, 8),
    *,
    metric: Metric = "euclidean",
    map_r: bool = True,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
) -> dict[str, object]:
    """Recall@K and MAP@R in one pass over the distances (one matrix product instead of two).

    Returns ``{"recall": {k: recall}, "map_at_r": value}`` (``map_at_r`` is left out when
    ``map_r=False``, which skips ranking every positive and is a little faster).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [0.1], [1.0], [1.2]], dtype=np.float32)
    >>> evaluate_retrieval(x, [0, 0, 1, 1], ks=(1,))
    {'recall': {1: 1.0}, 'map_at_r': 1.0}
    """
    ks = tuple(int(k) for k in ks)
    if any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive, got {ks}")
    qf = as_tensor(query_feats, device=device)
    dev = qf.device
    leave_one_out = gallery_feats is None
    if leave_one_out != (gallery_labels is None):
        raise ValueError("give both gallery_feats and gallery_labels, or neither")
    gf = qf if leave_one_out else as_tensor(gallery_feats, device=dev)
    num_q, num_g = qf.shape[0], gf.shape[0]
    q_labels = _labels(query_labels, "query_labels", num_q)
    g_labels = q_labels if leave_one_out else _labels(gallery_labels, "gallery_labels", num_g)
    index = _LabelIndex(g_labels)

    first_rank = np.zeros(num_q, dtype=np.int64)  # 0: no same-label item
    map_sum = np.zeros(num_q)
    n_pos = np.zeros(num_q, dtype=np.int64)
    rows_per_block = block_rows(num_g, chunk_size, FEATURE_BLOCK_ELEMENTS)
    blocks = iter_pairwise_distance(
        qf, None if leave_one_out else gf, metric, chunk_size=rows_per_block
    )
    scratch: dict[str, object] = {}
    for start, stop, dist in blocks:
        block = Block(dist, scratch)
        rows, cols = index.pairs(q_labels[start:stop], start if leave_one_out else None)
        excl_rows = excl_cols = None
        if leave_one_out:
            excl_rows = np.arange(stop - start)
            excl_cols = excl_rows + start
        n_pos[start:stop] = np.bincount(rows, minlength=stop - start)
        if map_r:
            pr = positive_ranks(block, rows, cols, excl_rows, excl_cols)
            q = pr.rows + start
            first = pr.ordinals == 1
            first_rank[q[first]] = pr.ranks[first]
            hit = pr.ranks <= n_pos[q]
            contrib = np.where(hit, pr.ordinals / pr.ranks, 0.0)
            map_sum += np.bincount(q, contrib, minlength=num_q)
        else:
            fr, fc = _first_positive(block, rows, cols)
            pr = positive_ranks(block, fr, fc, excl_rows, excl_cols)
            first_rank[pr.rows + start] = pr.ranks

    found = first_rank > 0
    recall = {k: float(np.mean(found & (first_rank <= k))) if num_q else 0.0 for k in ks}
    out: dict[str, object] = {"recall": recall}
    if map_r:
        valid = n_pos > 0
        out["map_at_r"] = float(np.mean(map_sum[valid] / n_pos[valid])) if valid.any() else 0.0
    return out


def recall_at_k(
    query_feats: ArrayLike,
    query_labels: ArrayLike,
    gallery_feats: ArrayLike | None = None,
    gallery_labels: ArrayLike | None = None,
    ks: Iterable[int] = (1, 2, 4, 8),
    *,
    metric: Metric = "euclidean",
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
) -> dict[int, float]:
    """Recall@K: share of queries with a same-label item among their K nearest neighbours.

    ``gallery_feats=None`` is leave-one-out on the query set (CUB, Cars, SOP), with the query
    excluded by index; otherwise queries are ranked against the gallery (In-Shop). Computed block
    by block from the rank of each query's nearest same-label item, so SOP (60,502 x 60,502)
    needs one block of distances at a time, on CPU or GPU.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [0.1], [1.0], [5.0]], dtype=np.float32)
    >>> recall_at_k(x, [0, 1, 1, 0], ks=(1, 2, 3))
    {1: 0.25, 2: 0.5, 3: 1.0}
    """
    res = evaluate_retrieval(
        query_feats,
        query_labels,
        gallery_feats,
        gallery_labels,
        ks,
        metric=metric,
        map_r=False,
        chunk_size=chunk_size,
        device=device,
    )
    recall = res["recall"]
    assert isinstance(recall, dict)
    return recall


def map_at_r(
    query_feats: ArrayLike,
    query_labels: ArrayLike,
    gallery_feats: ArrayLike | None = None,
    gallery_labels: ArrayLike | None = None,
    *,
    metric: Metric = "euclidean",
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
) -> float:
    """MAP@R (Musgrave et al., 2020): AP over the first R results, R = number of same-label items.

    ``MAP@R = mean_q (1/R) * sum_{i <= R, i-th result relevant} precision@i``. It rewards a
    compact embedding more faithfully than Recall@1. Same protocols as :func:`recall_at_k`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [0.1], [0.3], [1.0]], dtype=np.float32)
    >>> map_at_r(x, [0, 0, 1, 1])  # item 2's nearest neighbour has the other label
    0.75
    """
    res = evaluate_retrieval(
        query_feats,
        query_labels,
        gallery_feats,
        gallery_labels,
        (1,),
        metric=metric,
        map_r=True,
        chunk_size=chunk_size,
        device=device,
    )
    value = res["map_at_r"]
    assert isinstance(value, float)
    return value
