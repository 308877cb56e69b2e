"""Counting engine of the ranking metrics: ranks of the positives without sorting a gallery.

Shared by :mod:`bdbnet.evaluation.reid` (re-ID CMC/mAP/mINP) and
:mod:`bdbnet.evaluation.retrieval` (Recall@K, MAP@R).

CMC, every AP flavour and mINP depend on a ranked list only through the *positions of its
positives*, so this module never argsorts a gallery. For a block of query rows it

1. takes, per row, the distance of the hardest (farthest) positive as a threshold: only items at
   or below it can precede a positive, so only those few are touched again;
2. gives every such candidate one 64-bit key, ``row | distance | column`` (the distance mapped to
   an order-preserving integer), so that a single value sort of a short array orders each row by
   distance with ties broken by gallery index -- what a stable argsort of the row would give;
3. finds each positive's rank by binary search of its key among the sorted candidates, minus the
   excluded items of its row (same identity and camera) that precede it.

The cost is one comparison pass over the distances plus ``O(C log C)`` for the ``C`` candidates, a
small share of the matrix for any reasonable model (and at worst a sort of it). The pass over the
distances runs where they live (a zero-copy NumPy view on CPU, torch on CUDA); the bookkeeping on
the extracted candidates runs in NumPy, whose SIMD sorts beat torch's CPU sort several times over
and which, being single-threaded, does not stall when other processes share the cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bdbnet.evaluation.distance import (
    DEFAULT_BLOCK_ELEMENTS,
    auto_chunk_rows,
    iter_pairwise_distance,
    iter_squared_norm_parts,
)

__all__ = [
    "Block",
    "PositiveRanks",
    "SquaredNormBlock",
    "block_rows",
    "feature_blocks",
    "max_rows_for_keys",
    "positive_ranks",
    "ragged_pairs",
]


_SENTINEL = np.iinfo(np.int64).max


@dataclass
class PositiveRanks:
    """Per positive (sorted by row, then by distance and index): row, rank and ordinal."""

    rows: np.ndarray  # local row index (int64)
    ranks: np.ndarray  # 1-based rank among the valid items of the row (int64)
    ordinals: np.ndarray  # 1-based position among the row's positives (int64)


def _col_bits(num_cols: int) -> int:
    return max(1, int(num_cols - 1).bit_length())


def max_rows_for_keys(num_cols: int) -> int:
    """Largest number of rows whose ``row | distance | column`` keys fit in a signed int64."""
    return (1 << (63 - 32 - _col_bits(num_cols))) - 1


def _float_codes(values: np.ndarray) -> np.ndarray:
    """Map float32 values to int64 in ``[0, 2**32)`` preserving order (``-0.0`` == ``0.0``)."""
    code = (values.astype(np.float32, copy=False) + np.float32(0.0)).view(np.int32)
    code = code.astype(np.int64)
    if code.size and code.min() < 0:  # negative distances: flip their order
        return np.where(code >= 0, code + (1 << 31), -1 - code)
    code += 1 << 31
    return code


def _dense_codes(*parts: np.ndarray) -> list[np.ndarray]:
    """Dense ranks of float64 values across ``parts`` (equal values share a code)."""
    values = np.concatenate(parts)
    order = np.argsort(values)
    ordered = values[order]
    new_group = np.ones(values.shape[0], dtype=np.int64)
    new_group[1:] = ordered[1:] != ordered[:-1]
    codes = np.empty(values.shape[0], dtype=np.int64)
    codes[order] = np.cumsum(new_group)
    return np.split(codes, np.cumsum([p.shape[0] for p in parts])[:-1])


def ragged_pairs(
    counts: np.ndarray, starts: np.ndarray, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Expand ``counts[i]`` consecutive items from ``starts[i]`` into ``(i, item)`` pairs.

    ``order`` (optional) maps the consecutive positions to item indices. Vectorised: this is how
    per-query lists of positives are built without a Python loop.
    """
    owner = np.repeat(np.arange(counts.shape[0], dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    items = starts[owner] + (np.arange(owner.shape[0], dtype=np.int64) - first[owner])
    if order is not None:
        items = order[items]
    return owner, items


#: Blocks of at least this many distances are scanned by row ranges in several threads.
_THREADED_ELEMENTS = 1 << 22
_POOL: ThreadPoolExecutor | None = None
_POOL_PID = 0


def _in_threads(part: Callable[[int, int], Any], num_rows: int, elements: int) -> list[Any]:
    """``part(lo, hi)`` over row ranges covering ``num_rows``, in order: one range for a small
    block, one per core (at most 4) for a large one. NumPy's passes release the GIL, so the
    ranges scan in parallel, and a busy core only slows its own range."""
    global _POOL, _POOL_PID
    workers = min(4, os.cpu_count() or 1, num_rows)
    if elements < _THREADED_ELEMENTS or workers < 2:
        return [part(0, num_rows)]
    if _POOL is None or os.getpid() != _POOL_PID:  # a forked child has none of its threads
        _POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bdbnet-rank")
        _POOL_PID = os.getpid()
    bounds = np.linspace(0, num_rows, workers + 1).astype(int)
    return list(_POOL.map(part, bounds[:-1].tolist(), bounds[1:].tolist()))


class Block:
    """A block of distance rows as the engine sees it.

    The passes over the whole block (threshold compare, candidate extraction) run where the
    tensor lives; everything after works on the few extracted values in NumPy. On CPU the block
    is read through a zero-copy NumPy view, by row ranges in a few threads: NumPy is as fast as
    torch for these memory-bound passes on an idle machine and several times faster on a busy
    one, where torch's thread pool stalls on every small operation.
    """

    def __init__(self, dist: torch.Tensor, scratch: dict[str, Any]) -> None:
        if not dist.is_floating_point() or dist.dtype in (torch.float16, torch.bfloat16):
            dist = dist.float()
        self.t = dist
        self.np = dist.numpy() if dist.device.type == "cpu" else None
        self.shape = tuple(dist.shape)
        self.is_double = dist.dtype == torch.float64
        self.scratch = scratch

    def _dev(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).to(self.t.device)

    def gather(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        if self.np is not None:
            return self.np[rows, cols]
        return self.t[self._dev(rows), self._dev(cols)].cpu().numpy()

    def columns(self, cols: np.ndarray) -> np.ndarray:
        if self.np is not None:
            return self.np[:, cols]
        return self.t[:, self._dev(cols)].cpu().numpy()

    def candidates(self, thr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices and values of the entries at or below their row's threshold."""
        num_rows, num_cols = self.shape
        n = num_rows * num_cols
        if self.np is not None:
            buf = self.scratch.get("cpu")
            if buf is None or buf.shape[0] < n:
                buf = self.scratch["cpu"] = np.empty(n, dtype=bool)
            mask = buf[:n].reshape(num_rows, num_cols)
            dist = self.np

            def part(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
                np.less_equal(dist[lo:hi], thr[lo:hi, None], out=mask[lo:hi])
                flat = np.flatnonzero(mask[lo:hi])
                if dist.flags.c_contiguous:
                    values = dist[lo:hi].reshape(-1)[flat]
                else:
                    values = dist[lo:hi][flat // num_cols, flat % num_cols]
                return flat + lo * num_cols, values

            parts = _in_threads(part, num_rows, n)
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        key = str(self.t.device)
        buf_t = self.scratch.get(key)
        if buf_t is None or buf_t.numel() < n:
            buf_t = self.scratch[key] = torch.empty(n, dtype=torch.bool, device=self.t.device)
        mask_t = buf_t[:n].view(num_rows, num_cols)
        torch.le(self.t, self._dev(thr).to(self.t.dtype).unsqueeze(1), out=mask_t)
        flat_t = mask_t.view(-1).nonzero().squeeze(1)
        values = self.t[flat_t // num_cols, flat_t % num_cols]
        return flat_t.cpu().numpy(), values.cpu().numpy()


def _ordered(bits: np.ndarray) -> np.ndarray:
    """float32 bit patterns (int32) <-> integers in the floats' order (the map is an involution)."""
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


class SquaredNormBlock(Block):
    """A block of Euclidean distances held as its matrix product ``raw = |y|^2 - 2 x.y``.

    A distance is ``finish(raw) = sqrt(max(raw + |x|^2, 0))`` (no root for squared distances),
    and finishing a whole block is three passes over memory that ranking does not need: the
    entries that are read (positives, exclusions, candidates, columns) are finished with the
    same float32 operations, so they have the very values of a finished block, and the
    threshold pass compares ``raw`` with each row's threshold carried back through ``finish``
    (monotone): the largest float32 ``raw`` that finishes at or below it, found by bisection
    over the floats in order. Metrics are identical to those of the finished block.
    """

    def __init__(
        self, raw: torch.Tensor, row_sqnorm: torch.Tensor, root: bool, scratch: dict[str, Any]
    ) -> None:
        if raw.dtype != torch.float32 or raw.device.type != "cpu":
            raise ValueError("SquaredNormBlock holds float32 CPU blocks")
        super().__init__(raw, scratch)
        self.row_sqnorm = row_sqnorm.numpy()
        self.root = root

    def _finish(self, raw: np.ndarray, sqnorm: np.ndarray) -> np.ndarray:
        out = raw + sqnorm
        np.maximum(out, np.float32(0.0), out=out)
        if self.root:  # torch's square root, as the finished block's (up to 1 ulp below NumPy's)
            torch.from_numpy(out).sqrt_()
        return out

    def gather(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self._finish(super().gather(rows, cols), self.row_sqnorm[rows])

    def columns(self, cols: np.ndarray) -> np.ndarray:
        return self._finish(super().columns(cols), self.row_sqnorm[:, None])

    def candidates(self, thr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # The bisection finishes with the correctly rounded root; torch's may be 1 ulp lower,
        # so the bound is taken one ulp up and the finished values are filtered exactly.
        loose = np.nextafter(thr.astype(np.float32), np.float32(np.inf)) if self.root else thr
        flat, raw = super().candidates(self._raw_bounds(loose))
        rows = flat // self.shape[1]
        values = self._finish(raw, self.row_sqnorm[rows])
        if self.root:
            keep = values <= thr[rows]
            flat, values = flat[keep], values[keep]
        return flat, values

    def _raw_bounds(self, thr: np.ndarray) -> np.ndarray:
        """Per row, the largest float32 ``r`` with ``finish(r) <= thr`` (``-inf`` if none)."""
        t = thr.astype(np.float32)
        code = lambda v: _ordered(np.asarray(v, dtype=np.float32).view(np.int32).astype(np.int64))  # noqa: E731
        lo = np.full(t.shape, code(-np.inf), dtype=np.int64)  # finish(-inf) = 0 <= thr, if any
        hi = np.full(t.shape, code(np.inf), dtype=np.int64)  # finish(inf) = inf
        done = t >= np.inf
        while True:
            open_ = (hi - lo > 1) & ~done
            if not open_.any():
                break
            mid = (lo + hi) // 2
            r = _ordered(mid.astype(np.int32)).view(np.float32)
            square = np.maximum(r + self.row_sqnorm, np.float32(0.0))
            ok = (np.sqrt(square) if self.root else square) <= t
            lo = np.where(open_ & ok, mid, lo)
            hi = np.where(open_ & ~ok, mid, hi)
        bound = _ordered(lo.astype(np.int32)).view(np.float32)
        bound = np.where(done, np.float32(np.inf), bound)
        # no row ranks anything when even finish(-inf) = 0 exceeds its threshold (no positive)
        return np.where(t >= 0.0, bound, np.float32(-np.inf)).astype(np.float32)


def positive_ranks(
    block: Block,
    pos_rows: np.ndarray,
    pos_cols: np.ndarray,
    excl_rows: np.ndarray | None = None,
    excl_cols: np.ndarray | None = None,
    global_excluded: np.ndarray | None = None,
) -> PositiveRanks:
    """Ranks of the positives of a block of rows.

    Parameters
    ----------
    block:
        ``(R, G)`` distances (lower = closer).
    pos_rows, pos_cols:
        The positives as (local row, column) pairs; they must not be excluded.
    excl_rows, excl_cols:
        Items excluded from one row only (e.g. same identity and camera, or the query itself).
    global_excluded:
        ``(G,)`` bool mask of columns excluded from every row (e.g. junk images).
    """
    num_rows, num_cols = block.shape
    if pos_rows.shape[0] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return PositiveRanks(empty, empty, empty)
    if num_rows > max_rows_for_keys(num_cols):
        raise ValueError(f"too many rows ({num_rows}) in one block for {num_cols} columns")

    pos_d = block.gather(pos_rows, pos_cols)
    if np.isnan(pos_d).any():
        raise ValueError("distances of positive pairs contain NaN")

    # 1. Candidates: everything at or below the row's hardest positive.
    thr = np.full(num_rows, -np.inf, dtype=pos_d.dtype)
    np.maximum.at(thr, pos_rows, pos_d)
    flat, c_d = block.candidates(thr)
    c_rows, c_cols = np.divmod(flat, num_cols)
    del flat

    has_excl = excl_rows is not None and excl_cols is not None and excl_rows.shape[0] > 0
    e_d = np.zeros(0, dtype=pos_d.dtype)
    if has_excl:
        assert excl_rows is not None and excl_cols is not None
        if global_excluded is not None:
            keep = ~global_excluded[excl_cols]
            excl_rows, excl_cols = excl_rows[keep], excl_cols[keep]
        e_d = block.gather(excl_rows, excl_cols)
        finite = ~np.isnan(e_d)  # a NaN never precedes anything
        excl_rows, excl_cols, e_d = excl_rows[finite], excl_cols[finite], e_d[finite]

    # 2. Order-preserving integer distance codes (dense ranks for float64, bit codes otherwise).
    if block.is_double:
        c_u, p_u, e_u = _dense_codes(c_d, pos_d, e_d)
    else:
        c_u, p_u, e_u = _float_codes(c_d), _float_codes(pos_d), _float_codes(e_d)

    cb = _col_bits(num_cols)
    row_shift = 32 + cb

    def keys(rows: np.ndarray, codes: np.ndarray, cols: np.ndarray) -> np.ndarray:
        # In place on the fresh ``rows``/``codes`` arrays: no temporaries of the candidates' size.
        rows <<= row_shift
        codes <<= cb
        rows |= codes
        rows |= cols
        return rows

    excluded = None if global_excluded is None else global_excluded[c_cols]
    cand = keys(c_rows, c_u, c_cols)
    if excluded is not None:
        cand[excluded] = _SENTINEL
    cand.sort()
    pos_key = keys(pos_rows.astype(np.int64), p_u, pos_cols)
    pos_key.sort()
    p_rows = pos_key >> row_shift
    row_base = p_rows << row_shift

    # 3. Everything in the row with a smaller key precedes the positive.
    before = np.searchsorted(cand, pos_key) - np.searchsorted(cand, row_base)
    if has_excl:
        assert excl_rows is not None and excl_cols is not None
        excl = keys(excl_rows.astype(np.int64), e_u, excl_cols)
        excl.sort()
        before -= np.searchsorted(excl, pos_key) - np.searchsorted(excl, row_base)
    ordinals = np.arange(pos_key.shape[0]) - np.searchsorted(pos_key, row_base) + 1
    return PositiveRanks(p_rows, before + 1, ordinals)


def block_rows(
    num_cols: int, chunk_size: int | None, elements: int = DEFAULT_BLOCK_ELEMENTS
) -> int:
    """Rows per block: ``chunk_size``, or about ``elements`` distances, within the key limit."""
    rows = chunk_size if chunk_size is not None else auto_chunk_rows(num_cols, elements)
    if rows < 1:
        raise ValueError("chunk_size must be positive")
    return min(rows, max_rows_for_keys(num_cols))


def feature_blocks(
    qf: torch.Tensor, gf: torch.Tensor, metric: str, rows: int
) -> Iterator[tuple[int, int, torch.Tensor | Block]]:
    """Distance blocks of features; float32 Euclidean ones on the CPU unfinished
    (:class:`~bdbnet.evaluation.positive_ranks.SquaredNormBlock`: the same metrics, three
    passes over each block fewer)."""
    unfinished = (
        metric in ("euclidean", "sqeuclidean")
        and qf.device.type == "cpu"
        and qf.dtype == gf.dtype == torch.float32
    )
    if not unfinished:
        yield from iter_pairwise_distance(qf, gf, metric, chunk_size=rows)
        return
    scratch: dict[str, Any] = {}
    for start, stop, raw, sqnorm in iter_squared_norm_parts(qf, gf, rows):
        yield start, stop, SquaredNormBlock(raw, sqnorm, metric == "euclidean", scratch)
