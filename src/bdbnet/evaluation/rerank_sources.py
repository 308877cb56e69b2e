"""Distance sources of k-reciprocal re-ranking: where the squared distances come from.

:mod:`bdbnet.evaluation.rerank` runs the algorithm on any :class:`DistanceSource`: the joint
(query + gallery) set, queries first, read block of rows by block of rows or pair by pair.

* :class:`MatrixSource` reads the three given matrices (query x gallery, query x query,
  gallery x gallery), as the reference ``re_ranking`` takes them, without building the joint one;
* :class:`FeatureSource` computes distances from features on the fly, chunked, so no N x N
  matrix ever exists.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from bdbnet.evaluation.distance import ArrayLike, distance_block, prepare_features

__all__ = ["DistanceSource", "FeatureSource", "MatrixSource", "square"]

#: Largest query x gallery block kept from the ranking pass for the final blend (512 MiB).
_KEEP_QG_ELEMENTS = 1 << 27


class DistanceSource(Protocol):
    """Where squared distances come from: the joint (query + gallery) set, queries first."""

    num_query: int
    n: int
    device: torch.device

    def ranking_rows(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Rows ``start:stop`` against all items, as ``clamp(block + offset, 0)`` (or block)."""
        ...

    def pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Squared distances of the pairs ``(i[t], j[t])`` (float32)."""
        ...

    def query_gallery(self, start: int, stop: int) -> torch.Tensor:
        """Squared distances of queries ``start:stop`` to the gallery (a fresh float32 block)."""
        ...


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

    def ranking_rows(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.rows(start, stop), None

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
        # float32 Euclidean features take a shortcut when ranking: see ranking_rows.
        self.fast = metric == "euclidean" and self.x.dtype == torch.float32
        # The query x gallery squared distances, kept from the ranking pass for the final blend
        # (saves a second Q x G matrix product) when they fit in _KEEP_QG_ELEMENTS.
        nq, ng = self.num_query, self.n - self.num_query
        self._qg: torch.Tensor | None = None
        self._keep_qg = self.fast and nq * ng <= _KEEP_QG_ELEMENTS

    def _raw(self, start: int, stop: int, cols: slice) -> torch.Tensor:
        """``|y|^2 - 2 x.y`` for rows ``start:stop`` against items ``cols``."""
        y = self.x[cols]
        return torch.addmm(self.sqn[cols].unsqueeze(0), self.x[start:stop], y.T, alpha=-2.0)

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
        d = self._raw(start, stop, cols).add_(self.sqn[start:stop].unsqueeze(1)).clamp_(min=0.0)
        if diagonal:
            rows = torch.arange(stop - start, device=d.device)
            d[rows, rows + start] = 0.0
        return d.float()

    def rows(self, start: int, stop: int) -> torch.Tensor:
        return self._squared(start, stop, slice(None), diagonal=True)

    def ranking_rows(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(block, offset)`` with squared distances ``clamp(block + offset, 0)``.

        Adding the row norms and clamping do not change the order within a row, so ranking can
        work on the raw matrix product and apply them to the few fetched items only.
        """
        if not self.fast:
            return self.rows(start, stop), None
        raw = self._raw(start, stop, slice(None))
        offset = self.sqn[start:stop]
        rows = torch.arange(stop - start, device=raw.device)
        raw[rows, rows + start] = -offset  # the item itself: exactly 0 once the norm is added
        nq = self.num_query
        if self._keep_qg and stop <= nq:
            if self._qg is None:
                self._qg = torch.empty(nq, self.n - nq, dtype=torch.float32, device=self.device)
            # the very values query_gallery would compute: (|y|^2 - 2 x.y) + |x|^2, clamped
            torch.add(raw[:, nq:], offset.unsqueeze(1), out=self._qg[start:stop]).clamp_(min=0.0)
        return raw, offset

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
