"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) without any N x N dense matrix.

The authors' reference implementation, used unchanged by the official BDB code, builds the joint
(query + gallery) distance matrix, its full argsort, and dense ``V`` matrices: about six N x N
arrays, 9 GB on Market-1501 and far beyond a workstation on MSMT17. The algorithm itself needs
much less (steps as in the README, "Evaluation: exact and fast"):

* step 1-2 need, per item, only the row maximum and the ``k1 + 1`` nearest neighbours -- one
  streaming pass over blocks of distance rows (``topk``, never a full sort);
* ``V`` has a few dozen non-zeros per row (a few hundred after query expansion), so it is kept
  sparse (CSR) and built with vectorised set operations on the neighbour lists;
* the Jaccard distance only pairs items that share a non-zero column, which an inverted index
  over ``V``'s columns enumerates, block of queries by block of queries.

Memory is therefore O(N * (k1 + nnz)) plus one block, and the results equal the reference's
(float32, same formulas) up to float rounding. Ties in the neighbour order are broken by index.
Distance blocks, ``topk`` and the final blend run on the features' device (CPU or CUDA); the
sparse bookkeeping in between (a few dozen entries per item) runs in NumPy. Where the
distances come from (the three given matrices, or features block by block) is the business of
:mod:`bdbnet.evaluation.rerank_sources`; this module holds the algorithm and the public API.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from bdbnet.evaluation.distance import ArrayLike, Metric, as_tensor, auto_chunk_rows
from bdbnet.evaluation.rerank_neighbours import pack_keys, sort_rows, unpack_keys
from bdbnet.evaluation.rerank_sources import DistanceSource, FeatureSource, MatrixSource

__all__ = [
    "ReRankedBlocks",
    "iter_re_ranking",
    "iter_re_ranking_features",
    "re_ranking",
    "re_ranking_features",
]

#: Pairs ``(query entry, gallery entry)`` expanded at once in the Jaccard step.
_JACCARD_BATCH = 1 << 22
#: Rows per block in the neighbour-set steps (bounded memory: ~5 KB per row at k1 = 20).
_SET_ROWS = 4096
#: Extra neighbours fetched by topk so that ties at the k-th place can be ordered by index.
_TIE_MARGIN = 8


# --------------------------------------------------------------------------------------------
# Small tensor helpers (CPU or CUDA)
# --------------------------------------------------------------------------------------------


def _argsort(keys: torch.Tensor, stable: bool = False) -> torch.Tensor:
    """Indices that sort ``keys`` along the last dimension (ties by position if ``stable``)."""
    if keys.device.type == "cpu":
        kind = "stable" if stable else None
        return torch.from_numpy(np.argsort(keys.numpy(), axis=-1, kind=kind))
    return torch.sort(keys, dim=-1, stable=stable).indices


# --------------------------------------------------------------------------------------------
# The algorithm
# --------------------------------------------------------------------------------------------


class _Neighbours:
    """Steps 1-2: per item, the row maximum and the nearest items by normalised distance.

    ``idx``/``val`` hold the ``fetch`` nearest items (ties by index) and their normalised
    distances, which also serve most of the weight look-ups of step 3.
    """

    def __init__(self, source: DistanceSource, k: int, rows: int) -> None:
        n = source.n
        self.k = k = min(k, n)
        fetch = min(n, k + _TIE_MARGIN)
        self.idx = np.empty((n, fetch), dtype=np.int64)
        self.val = np.empty((n, fetch), dtype=np.float32)
        self.row_max = np.empty(n, dtype=np.float32)
        for s, e, vals, idx, mx in source.nearest(fetch, rows):
            vals = vals / mx.unsqueeze(1)
            # Order the fetched items by (value, index); values are >= 0, so their float bits
            # are order-preserving integers and the pair fits one int64 key.
            ordered_vals, ordered_idx = unpack_keys(sort_rows(pack_keys(vals, idx)))
            self.idx[s:e] = ordered_idx.cpu().numpy()
            self.val[s:e] = ordered_vals.cpu().numpy()
            self.row_max[s:e] = mx.cpu().numpy()
            if fetch < n:
                # Items beyond the fetched ones are at least as far as the farthest fetched one;
                # if that one ties with the k-th, a smaller index may hide there: redo the row.
                bad = np.flatnonzero(self.val[s:e, -1] == self.val[s:e, k - 1])
                for r in (s + bad).tolist():
                    full = source.rows(r, r + 1)[0]
                    top = full.max()
                    full = full / top
                    order = _argsort(full, stable=True)[:fetch]
                    self.idx[r] = order.cpu().numpy()
                    self.val[r] = full[order].cpu().numpy()
                    self.row_max[r] = float(top)

    @property
    def ranks(self) -> np.ndarray:
        return self.idx[:, : self.k]


def _ragged(counts: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand ``counts[i]`` consecutive positions from ``starts[i]`` into ``(i, position)``."""
    owner = np.repeat(np.arange(counts.shape[0], dtype=np.int64), counts)
    shift = starts - (np.cumsum(counts) - counts)
    return owner, np.arange(owner.shape[0], dtype=np.int64) + shift[owner]


def _reciprocal(ranks: np.ndarray, k: int) -> np.ndarray:
    """``mask[i, a]``: is ``i`` among the ``k`` nearest of its ``a``-th nearest neighbour?"""
    r = ranks[:, :k]
    out = np.empty(r.shape, dtype=bool)
    for s in range(0, r.shape[0], _SET_ROWS):
        rr = r[s : s + _SET_ROWS]
        me = np.arange(s, s + rr.shape[0])[:, None, None]
        out[s : s + _SET_ROWS] = (r[rr] == me).any(2)
    return out


def _expanded_sets(ranks: np.ndarray, k1: int) -> tuple[np.ndarray, np.ndarray]:
    """Step 3 (sets only): CSR ``(indptr, cols)`` of every item's expanded k-reciprocal set."""
    n = ranks.shape[0]
    k_a = min(k1 + 1, n)
    k_h = min(round(k1 / 2) + 1, n)
    r1, rh = ranks[:, :k_a], ranks[:, :k_h]
    rec1, rech = _reciprocal(ranks, k_a), _reciprocal(ranks, k_h)
    step = max(1, min(_SET_ROWS, (1 << 25) // n))  # membership table: step x n booleans
    member = np.zeros((step, n), dtype=bool)
    counts, cols = [], []
    for s in range(0, n, step):
        e = min(n, s + step)
        f, fm = r1[s:e], rec1[s:e]  # i's forward list and its reciprocal mask
        h, hm = rh[f], rech[f]  # each candidate's half-size forward list and mask
        rr, cc = np.nonzero(fm)
        member[rr, f[rr, cc]] = True  # row i marks i's k-reciprocal set
        inset = member[np.arange(e - s)[:, None, None], h] & hm
        member[rr, f[rr, cc]] = False
        overlap = inset.sum(-1)
        size = hm.sum(-1)
        accept = fm & (overlap > (2.0 / 3.0) * size)
        first = np.where(fm, f, n)
        more = np.where(accept[..., None] & hm, h, n).reshape(e - s, -1)
        cand = np.sort(np.concatenate([first, more], 1), axis=1)
        keep = cand < n
        keep[:, 1:] &= cand[:, 1:] != cand[:, :-1]
        counts.append(keep.sum(1))
        cols.append(cand[keep])
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=indptr[1:])
    return indptr, np.concatenate(cols)


def _weights(
    source: DistanceSource, nb: _Neighbours, indptr: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Step 3 (values): ``exp(-d)`` over each set, normalised to sum 1 per row."""
    n = source.n
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    dn = np.empty(cols.shape[0], dtype=np.float32)
    step = 1 << 20
    for s in range(0, rows.shape[0], step):
        r, c = rows[s : s + step], cols[s : s + step]
        hit = nb.idx[r] == c[:, None]  # most set members are among the row's fetched items
        found = hit.any(1)
        dn[s : s + step] = nb.val[r, hit.argmax(1)]
        miss = np.flatnonzero(~found)
        if miss.shape[0]:
            d2 = source.pairs(r[miss], c[miss])
            dn[s + miss] = d2 / nb.row_max[r[miss]]
    w = np.exp(-dn)
    total = np.bincount(rows, w.astype(np.float64), minlength=n).astype(np.float32)
    return w / total[rows]


def _query_expansion(
    indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray, ranks: np.ndarray, k2: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 4: every row of V becomes the mean of the rows of its ``k2`` nearest items."""
    n = ranks.shape[0]
    k2 = min(k2, n)
    nb = ranks[:, :k2]
    counts, out_cols, out_vals = [], [], []
    step = max(1, (1 << 22) // max(1, k2 * int(np.diff(indptr).max(initial=1))))
    for s in range(0, n, step):
        e = min(n, s + step)
        src = nb[s:e].reshape(-1)
        owner, pos = _ragged(indptr[src + 1] - indptr[src], indptr[src])
        key = (owner // k2) * n + cols[pos]
        order = np.argsort(key)
        key = key[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        summed = np.add.reduceat(vals[pos[order]].astype(np.float64), starts)
        uniq = key[starts]
        counts.append(np.bincount(uniq // n, minlength=e - s))
        out_cols.append(uniq % n)
        out_vals.append((summed / k2).astype(np.float32))
    new_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=new_ptr[1:])
    return new_ptr, np.concatenate(out_cols), np.concatenate(out_vals)


def _jaccard_blocks(
    source: DistanceSource,
    indptr: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    row_max: np.ndarray,
    lambda_value: float,
    rows: int,
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Step 5-6 per block of queries: Jaccard via an inverted index, then the final blend."""
    nq, n = source.num_query, source.n
    ng = n - nq
    # Inverted index over V's columns, restricted to gallery rows (the only ones we output).
    g_start = int(indptr[nq])
    g_cols, g_vals = cols[g_start:], vals[g_start:]
    g_rows = np.repeat(np.arange(ng, dtype=np.int64), np.diff(indptr[nq:]))
    order = np.argsort(g_cols, kind="stable")
    inv_rows, inv_vals = g_rows[order], g_vals[order]
    col_count = np.bincount(g_cols, minlength=n)
    col_start = np.cumsum(col_count) - col_count
    row_max_t = torch.from_numpy(row_max).to(source.device)
    for s in range(0, nq, rows):
        e = min(nq, s + rows)
        a, b = int(indptr[s]), int(indptr[e])
        q_rows = np.repeat(np.arange(e - s, dtype=np.int64), np.diff(indptr[s : e + 1]))
        q_cols, q_vals = cols[a:b], vals[a:b]
        lens = col_count[q_cols]
        shared: np.ndarray | float = 0.0
        cum = np.cumsum(lens)
        lo = 0
        while lo < q_cols.shape[0]:
            base = int(cum[lo - 1]) if lo else 0
            hi = max(lo + 1, int(np.searchsorted(cum, base + _JACCARD_BATCH, side="right")))
            owner, pos = _ragged(lens[lo:hi], col_start[q_cols[lo:hi]])
            vmin = np.minimum(q_vals[lo:hi][owner], inv_vals[pos])
            flat = q_rows[lo:hi][owner] * ng + inv_rows[pos]
            shared = shared + np.bincount(flat, vmin, minlength=(e - s) * ng)
            lo = hi
        shared = np.broadcast_to(np.asarray(shared, dtype=np.float64), ((e - s) * ng,))
        m = torch.from_numpy(shared.astype(np.float32)).view(e - s, ng).to(source.device)
        # final = lambda * d / max + (1 - lambda) * (1 - m / (2 - m)), in four in-place passes
        out = source.query_gallery(s, e)
        out.mul_((lambda_value / row_max_t[s:e]).unsqueeze(1)).add_(1.0 - lambda_value)
        out.addcdiv_(m, torch.rsub(m, 2.0), value=-(1.0 - lambda_value))
        yield s, e, out


def _check_params(k1: int, k2: int, lambda_value: float) -> None:
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be >= 1, got k1={k1}, k2={k2}")
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value}")


def _rerank_blocks(
    source: DistanceSource, k1: int, k2: int, lambda_value: float, chunk_size: int | None
) -> Iterator[tuple[int, int, torch.Tensor]]:
    rows = chunk_size or auto_chunk_rows(source.n)
    with torch.no_grad():
        nb = _Neighbours(source, max(k1 + 1, k2), rows)
        indptr, cols = _expanded_sets(nb.ranks, k1)
        vals = _weights(source, nb, indptr, cols)
        if k2 != 1:
            indptr, cols, vals = _query_expansion(indptr, cols, vals, nb.ranks, k2)
        row_max = nb.row_max
        del nb
        out_rows = chunk_size or auto_chunk_rows(source.n - source.num_query)
        yield from _jaccard_blocks(source, indptr, cols, vals, row_max, lambda_value, out_rows)


class ReRankedBlocks:
    """Re-ranked query x gallery distances, produced block by block of query rows.

    Iterating yields ``(start, stop, block)`` (float32 tensors on ``device``); :meth:`collect`
    assembles the whole ``shape`` matrix. Returned by the ``iter_*`` functions.
    """

    def __init__(self, source: DistanceSource, k1: int, k2: int, lambda_value: float, chunk_size):
        _check_params(k1, k2, lambda_value)
        if chunk_size is not None and chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self._args = (source, k1, k2, lambda_value, chunk_size)
        self.shape = (source.num_query, source.n - source.num_query)
        self.device = source.device
        self._it: Iterator[tuple[int, int, torch.Tensor]] | None = None

    def __iter__(self) -> Iterator[tuple[int, int, torch.Tensor]]:
        return self

    def __next__(self) -> tuple[int, int, torch.Tensor]:
        if self._it is None:
            self._it = _rerank_blocks(*self._args)
        return next(self._it)

    def collect(self) -> torch.Tensor:
        out = torch.empty(self.shape, dtype=torch.float32, device=self.device)
        for s, e, block in self:
            out[s:e] = block
        return out


def _dense(iter_fn: Callable[..., ReRankedBlocks]) -> Callable[[Callable], Callable]:
    """Make the whole-matrix twin of ``iter_fn``: same parameters (one signature, kept on
    ``iter_fn``), the collected result as a NumPy array unless the first input is a tensor."""

    def decorate(stub: Callable) -> Callable[..., np.ndarray | torch.Tensor]:
        @functools.wraps(stub)
        def dense(first: ArrayLike, *args: Any, **kwargs: Any) -> np.ndarray | torch.Tensor:
            out = iter_fn(first, *args, **kwargs).collect()
            return out if isinstance(first, torch.Tensor) else out.cpu().numpy()

        sig = inspect.signature(iter_fn)
        dense.__signature__ = sig.replace(  # type: ignore[attr-defined]
            return_annotation="np.ndarray | torch.Tensor"
        )
        return dense

    return decorate


def iter_re_ranking(
    q_g_dist: ArrayLike,
    q_q_dist: ArrayLike,
    g_g_dist: ArrayLike,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    chunk_size: int | None = None,
) -> ReRankedBlocks:
    """:func:`re_ranking` one block of query rows at a time: yields ``(start, stop, block)``."""
    q_g = as_tensor(q_g_dist)
    dev = q_g.device
    source = MatrixSource(q_g, as_tensor(q_q_dist, device=dev), as_tensor(g_g_dist, device=dev))
    return ReRankedBlocks(source, k1, k2, lambda_value, chunk_size)


@_dense(iter_re_ranking)
def re_ranking() -> None:
    """k-reciprocal re-ranked query x gallery distances from three Euclidean distance matrices.

    Parameters as :func:`iter_re_ranking`: ``(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6,
    lambda_value=0.3, *, chunk_size=None)``. Same inputs, parameters and values (float32) as the
    authors' reference ``re_ranking`` (k-reciprocal sets, their expansion, local query
    expansion, Jaccard distance), but
    without the joint N x N matrix, its argsort or dense ``V``: beyond the inputs it needs one
    block of rows plus sparse neighbour sets. The result follows ``q_g_dist``'s type (NumPy
    array, or tensor on its device).

    Examples
    --------
    >>> import numpy as np
    >>> from bdbnet.evaluation import pairwise_distance
    >>> rng = np.random.default_rng(0)
    >>> q, g = rng.normal(size=(4, 8)), rng.normal(size=(30, 8))
    >>> final = re_ranking(pairwise_distance(q, g), pairwise_distance(q), pairwise_distance(g))
    >>> final.shape, final.dtype
    ((4, 30), dtype('float32'))
    """


def iter_re_ranking_features(
    query_feats: ArrayLike,
    gallery_feats: ArrayLike,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    metric: Metric = "euclidean",
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
) -> ReRankedBlocks:
    """:func:`re_ranking_features` one block of query rows at a time.

    This is what ``evaluate_features(..., rerank=True)`` consumes, so that even the Q x G
    re-ranked matrix (3.8 GB on MSMT17) is never held.
    """
    source = FeatureSource(query_feats, gallery_feats, metric, device)
    return ReRankedBlocks(source, k1, k2, lambda_value, chunk_size)


@_dense(iter_re_ranking_features)
def re_ranking_features() -> None:
    """:func:`re_ranking` computed from features, without any N x N matrix (N = Q + G).

    Parameters as :func:`iter_re_ranking_features`. Distances (``metric``, Euclidean by default
    as the reference expects) are computed block by block on the features' device, or
    ``device``; only the k-nearest-neighbour lists and the sparse k-reciprocal vectors are kept.
    The Q x G result is the only large allocation; use :func:`iter_re_ranking_features` or
    ``evaluate_features(rerank=True)`` to avoid it too.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> final = re_ranking_features(rng.normal(size=(4, 8)), rng.normal(size=(30, 8)))
    >>> final.shape
    (4, 30)
    """
