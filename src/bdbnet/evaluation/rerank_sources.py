"""Distance sources of k-reciprocal re-ranking: where the squared distances come from.

:mod:`bdbnet.evaluation.rerank` runs the algorithm on any :class:`DistanceSource`: the joint
(query + gallery) set, queries first, read block of rows by block of rows or pair by pair.

* :class:`MatrixSource` reads the three given matrices (query x gallery, query x query,
  gallery x gallery), as the reference ``re_ranking`` takes them, without building the joint one;
* :class:`FeatureSource` computes distances from features on the fly, chunked, so no N x N
  matrix ever exists.

Both answer :meth:`DistanceSource.nearest`, the neighbour pass of the algorithm. Given matrices
are read row block by row block; from Euclidean features the joint distance matrix is computed
once per *pair* of blocks (:mod:`bdbnet.evaluation.rerank_neighbours`: it is symmetric, so each
off-diagonal tile serves its rows and, by columns, its columns' rows): half the matrix
products, which are most of re-ranking's time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple, Protocol

import numpy as np
import torch

from bdbnet.evaluation.distance import (
    DEFAULT_BLOCK_ELEMENTS,
    ArrayLike,
    distance_block,
    prepare_features,
)
from bdbnet.evaluation.rerank_neighbours import squared_tile, symmetric_nearest

__all__ = ["DistanceSource", "FeatureSource", "MatrixSource", "Nearest", "row_ranges", "square"]

#: Largest query x gallery block kept from the ranking pass for the final blend (512 MiB).
_KEEP_QG_ELEMENTS = 1 << 27
#: Side of the square tiles of the symmetric pass (about DEFAULT_BLOCK_ELEMENTS distances).
_TILE = math.isqrt(DEFAULT_BLOCK_ELEMENTS)


class Nearest(NamedTuple):
    """The nearest items of rows ``start:stop`` (in no particular order) and their row maxima."""

    start: int
    stop: int
    values: torch.Tensor  # (rows, fetch) squared distances, clamped at 0
    index: torch.Tensor  # (rows, fetch) int64 item indices
    row_max: torch.Tensor  # (rows,) largest squared distance of each row


def row_ranges(num_query: int, n: int, rows: int) -> Iterator[tuple[int, int]]:
    """Blocks of rows that never straddle the query/gallery boundary."""
    for lo, hi in ((0, num_query), (num_query, n)):
        for s in range(lo, hi, rows):
            yield s, min(hi, s + rows)


class DistanceSource(Protocol):
    """Where squared distances come from: the joint (query + gallery) set, queries first."""

    num_query: int
    n: int
    device: torch.device

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """Squared distances of rows ``start:stop`` to all items (float32)."""
        ...

    def nearest(self, fetch: int, rows: int) -> Iterator[Nearest]:
        """Every row's ``fetch`` nearest items, block of about ``rows`` rows by block, in order."""
        ...

    def pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Squared distances of the pairs ``(i[t], j[t])`` (float32)."""
        ...

    def query_gallery(self, start: int, stop: int) -> torch.Tensor:
        """Squared distances of queries ``start:stop`` to the gallery (a fresh float32 block)."""
        ...


def nearest_in_rows(source: DistanceSource, fetch: int, rows: int) -> Iterator[Nearest]:
    """:meth:`DistanceSource.nearest` from whole rows (``source.rows``), one block at a time."""
    for s, e in row_ranges(source.num_query, source.n, rows):
        block = source.rows(s, e)
        values, index = torch.topk(block, fetch, dim=1, largest=False, sorted=False)
        yield Nearest(s, e, values, index, block.amax(1))


def square(x: torch.Tensor) -> torch.Tensor:
    """``d**2`` in the input's precision, then float32 -- as the reference's ``np.power``."""
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    return (x * x).float()


class MatrixSource:
    """Squared distances from the three given blocks.

    The reference normalises each *column* of the joint matrix and transposes; reading the
    blocks transposed (``q_q.T``, ``g_g.T``) reproduces that exactly even for slightly
    asymmetric inputs, without building the joint matrix.
    """

    def __init__(self, q_g: torch.Tensor, q_q: torch.Tensor, g_g: torch.Tensor) -> None:
        nq, ng = q_g.shape
        if q_q.shape != (nq, nq) or g_g.shape != (ng, ng):
            raise ValueError(
                f"shapes do not fit: q_g {tuple(q_g.shape)}, q_q {tuple(q_q.shape)}, "
                f"g_g {tuple(g_g.shape)}"
            )
        self.q_g, self.q_q, self.g_g = q_g, q_q, g_g
        self.num_query, self.n = nq, nq + ng
        self.device = q_g.device

    def rows(self, start: int, stop: int) -> torch.Tensor:
        nq = self.num_query
        out = torch.empty(stop - start, self.n, dtype=torch.float32, device=self.device)
        if stop <= nq:
            out[:, :nq] = square(self.q_q[:, start:stop].T)
            out[:, nq:] = square(self.q_g[start:stop])
        else:
            a, b = start - nq, stop - nq
            out[:, :nq] = square(self.q_g[:, a:b].T)
            out[:, nq:] = square(self.g_g[:, a:b].T)
        return out

    def nearest(self, fetch: int, rows: int) -> Iterator[Nearest]:
        return nearest_in_rows(self, fetch, rows)

    def pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        # Element (i, j) of the transposed joint matrix is joint[j, i].
        nq = self.num_query
        out = np.empty(i.shape[0], dtype=np.float32)
        iq, jq = i < nq, j < nq
        for sel, mat, r, c in (
            (iq & jq, self.q_q, j, i),
            (iq & ~jq, self.q_g, i, j - nq),
            (~iq & jq, self.q_g, j, i - nq),
            (~iq & ~jq, self.g_g, j - nq, i - nq),
        ):
            rr = torch.from_numpy(r[sel]).to(self.device)
            cc = torch.from_numpy(c[sel]).to(self.device)
            out[sel] = square(mat[rr, cc]).cpu().numpy()
        return out

    def query_gallery(self, start: int, stop: int) -> torch.Tensor:
        return square(self.q_g[start:stop])


class FeatureSource:
    """Squared distances computed from features on the fly (Euclidean by default)."""

    def __init__(
        self, query: ArrayLike, gallery: ArrayLike, metric: str, device: torch.device | str | None
    ) -> None:
        qf, gf = prepare_features(query, gallery, metric, device)
        assert gf is not None
        self.x = torch.cat([qf, gf])
        self.metric = metric
        self.num_query, self.n = qf.shape[0], self.x.shape[0]
        self.device = self.x.device
        self.sqn = self.x.pow(2).sum(1)
        # float32 Euclidean features take the symmetric pass: see nearest.
        self.fast = metric == "euclidean" and self.x.dtype == torch.float32
        # The query x gallery squared distances, kept from the neighbour pass for the final
        # blend (saves a second Q x G matrix product) when they fit in _KEEP_QG_ELEMENTS.
        nq, ng = self.num_query, self.n - self.num_query
        self._qg: torch.Tensor | None = None
        self._keep_qg = self.fast and nq * ng <= _KEEP_QG_ELEMENTS

    def _squared(self, start: int, stop: int, cols: slice, diagonal: bool) -> torch.Tensor:
        if self.metric != "euclidean":
            d = distance_block(
                self.x[start:stop],
                self.x[cols],
                self.metric,
                self.sqn[cols],
                start if diagonal else None,
            )
            return square(d)
        d = squared_tile(self.x, self.sqn, slice(start, stop), cols).clamp_(min=0.0)
        if diagonal:
            rows = torch.arange(stop - start, device=d.device)
            d[rows, rows + start] = 0.0
        return d.float()

    def rows(self, start: int, stop: int) -> torch.Tensor:
        return self._squared(start, stop, slice(None), diagonal=True)

    def nearest(self, fetch: int, rows: int) -> Iterator[Nearest]:
        """The neighbour pass; for float32 Euclidean features over the symmetric matrix
        (:func:`~bdbnet.evaluation.rerank_neighbours.symmetric_nearest`, blocks of
        ``max(rows, _TILE)`` items), keeping the query x gallery tiles for the final blend."""
        if not self.fast:
            yield from nearest_in_rows(self, fetch, rows)
            return
        nq = self.num_query

        def keep(s: int, e: int, cs: int, ce: int, tile: torch.Tensor) -> None:
            if self._keep_qg and e <= nq <= cs:
                if self._qg is None:
                    self._qg = torch.empty(nq, self.n - nq, device=self.device)
                torch.clamp(tile, min=0.0, out=self._qg[s:e, cs - nq : ce - nq])

        blocks = list(row_ranges(nq, self.n, max(rows, _TILE)))
        for s, e, values, items, top in symmetric_nearest(self.x, self.sqn, blocks, fetch, keep):
            yield Nearest(s, e, values, items, top)

    def query_gallery(self, start: int, stop: int) -> torch.Tensor:
        if self._qg is not None:
            out = self._qg[start:stop]  # used once: the caller may change it in place
            if stop >= self.num_query:
                self._qg = None
            return out
        return self._squared(start, stop, slice(self.num_query, None), diagonal=False)

    def pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        out = np.empty(i.shape[0], dtype=np.float32)
        step = max(1, (1 << 24) // max(1, self.x.shape[1]))
        for s in range(0, i.shape[0], step):
            a = torch.from_numpy(i[s : s + step]).to(self.device)
            b = torch.from_numpy(j[s : s + step]).to(self.device)
            dot = (self.x[a] * self.x[b]).sum(1)
            if self.metric == "cosine":
                d = (1.0 - dot).clamp_(min=0.0)
            else:  # squared Euclidean, as in the blocks (exactly 0 on the diagonal)
                d = (self.sqn[a] + self.sqn[b] - 2.0 * dot).clamp_(min=0.0)
            d = torch.where(a == b, torch.zeros_like(d), d)
            # Euclidean: d already is the squared distance; other metrics get squared here.
            d = d.float() if self.metric == "euclidean" else square(d)
            out[s : s + step] = d.cpu().numpy()
        return out
