"""Top-k gallery search: exact and chunked in torch (default), faiss (optional), re-ranked.

The torch search never holds more than one ``query block x gallery chunk`` distance block: for
each chunk of gallery rows it takes that chunk's ``k`` nearest items per query and merges them
with the running top-k. Ties in distance are broken by gallery index (the smaller index ranks
first), exactly as a stable sort of the full distance row would, so the result equals brute
force whatever the chunk size. The gallery may be stored in float16 (half the memory; each chunk
is converted to float32 when it is compared).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bdbnet.evaluation.distance import (
    DEFAULT_BLOCK_ELEMENTS,
    ArrayLike,
    Metric,
    as_tensor,
    pairwise_distance,
    topk,
)

__all__ = ["DEFAULT_GALLERY_CHUNK", "Hit", "SearchResult", "search", "topk_search"]

#: Gallery rows compared at once by default (64 Ki rows x 1536-d float32 = 384 MiB of features
#: converted at a time only when stored in float16; otherwise a view).
DEFAULT_GALLERY_CHUNK = 1 << 16


@dataclass
class SearchResult:
    """``indices[q, r]`` is the gallery index at rank ``r`` (0-based) for query ``q`` and
    ``distances[q, r]`` its distance (for ``rerank=True``: the re-ranked distance)."""

    indices: torch.Tensor  # (Q, k) int64
    distances: torch.Tensor  # (Q, k) float32

    def __len__(self) -> int:
        return int(self.indices.shape[0])


@dataclass(frozen=True)
class Hit:
    """One ranked gallery item, as ``search --json`` and the service answer it."""

    rank: int
    index: int
    path: str
    distance: float
    pid: int | None
    camid: int | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _merge(
    best: tuple[torch.Tensor, torch.Tensor] | None,
    new: tuple[torch.Tensor, torch.Tensor],
    k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge two (value, index) top lists sorted by (value, index), all indices of ``best``
    being smaller than those of ``new``: a stable sort of the concatenation keeps the order."""
    if best is None:
        return new
    vals = torch.cat([best[0], new[0]], dim=1)
    idx = torch.cat([best[1], new[1]], dim=1)
    vals, order = torch.sort(vals, dim=1, stable=True)
    return vals[:, :k], idx.gather(1, order[:, :k])


def topk_search(
    query: ArrayLike,
    gallery: ArrayLike,
    k: int = 10,
    metric: Metric = "euclidean",
    *,
    gallery_chunk: int | None = None,
    device: torch.device | str | None = None,
) -> SearchResult:
    """Exact top-``k`` nearest gallery rows of every query row, chunked over the gallery.

    Distances are those of :func:`bdbnet.evaluation.pairwise_distance` (``metric``:
    ``"euclidean"``, ``"sqeuclidean"`` or ``"cosine"``). Memory beyond the inputs: one distance
    block of at most ``DEFAULT_BLOCK_ELEMENTS`` (32 MiB) plus one float32 copy of a gallery chunk
    when the gallery is not float32. ``k`` larger than the gallery returns the whole gallery.
    """
    q = as_tensor(query, device=device)
    g = as_tensor(gallery)
    dev = q.device
    if q.dim() != 2 or g.dim() != 2:
        raise ValueError("query and gallery features must be 2-D (num_items, dim)")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"feature dims differ: query {q.shape[1]} vs gallery {g.shape[1]}")
    if k < 1:
        raise ValueError("k must be positive")
    num_q, num_g = q.shape[0], g.shape[0]
    k = min(k, num_g)
    if num_q == 0 or num_g == 0:
        return SearchResult(
            torch.empty(num_q, k, dtype=torch.int64), torch.empty(num_q, k, dtype=torch.float32)
        )
    chunk = gallery_chunk or DEFAULT_GALLERY_CHUNK
    if chunk < 1:
        raise ValueError("gallery_chunk must be positive")
    chunk = min(chunk, num_g)
    q_rows = max(1, DEFAULT_BLOCK_ELEMENTS // chunk)
    q = q if q.dtype == torch.float64 else q.float()
    out_idx, out_val = [], []
    for qs in range(0, num_q, q_rows):
        qb = q[qs : qs + q_rows]
        best = None
        for gs in range(0, num_g, chunk):
            gb = g[gs : gs + chunk].to(device=dev)
            gb = gb.to(qb.dtype) if gb.dtype != qb.dtype else gb
            d = pairwise_distance(qb, gb, metric)
            vals, cols = topk(d, k)
            best = _merge(best, (vals, cols + gs), k)
        assert best is not None
        out_val.append(best[0].float().cpu())
        out_idx.append(best[1].cpu())
    return SearchResult(torch.cat(out_idx), torch.cat(out_val))


def _faiss_search(q: torch.Tensor, g: torch.Tensor, k: int, metric: str) -> SearchResult:
    try:
        import faiss
    except ImportError as err:
        raise ImportError(
            "backend='faiss' needs faiss: pip install 'bdbnet[faiss]' (faiss-cpu)"
        ) from err
    qn = np.ascontiguousarray(q.detach().float().cpu().numpy())
    dim = qn.shape[1]
    if metric == "cosine":
        faiss.normalize_L2(qn)
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexFlatL2(dim)
    for gs in range(0, g.shape[0], DEFAULT_GALLERY_CHUNK):
        gn = np.ascontiguousarray(g[gs : gs + DEFAULT_GALLERY_CHUNK].float().cpu().numpy())
        if metric == "cosine":
            faiss.normalize_L2(gn)
        index.add(gn)
    dist, idx = index.search(qn, min(k, g.shape[0]))
    dist_t = torch.from_numpy(dist)
    if metric == "cosine":
        dist_t = (1.0 - dist_t).clamp_(min=0.0)
    elif metric == "euclidean":
        dist_t = dist_t.clamp_(min=0.0).sqrt_()
    return SearchResult(torch.from_numpy(idx).long(), dist_t)


def search(
    query: ArrayLike,
    gallery: ArrayLike,
    topk: int = 10,
    metric: Metric = "euclidean",
    *,
    backend: str = "torch",
    rerank: bool = False,
    gallery_chunk: int | None = None,
    device: torch.device | str | None = None,
) -> SearchResult:
    """Rank ``gallery`` for every query row; see :func:`topk_search`.

    ``backend="faiss"`` uses an exact flat faiss index (``pip install 'bdbnet[faiss]'``); its
    order among exactly tied distances is faiss's. ``rerank=True`` applies k-reciprocal
    re-ranking (Zhong et al., :func:`bdbnet.evaluation.re_ranking_features`, Euclidean,
    k1=20, k2=6, lambda=0.3); it needs the gallery's own neighbour lists and a ``Q x G``
    result, so it suits galleries up to about 10^5 items.
    """
    if rerank:
        from bdbnet.evaluation import re_ranking_features

        q = as_tensor(query, device=device).float()
        g = as_tensor(gallery, device=q.device).float()
        final = as_tensor(re_ranking_features(q, g)).float()
        k = min(topk, g.shape[0])
        vals, order = torch.sort(final, dim=1, stable=True)
        return SearchResult(order[:, :k].cpu(), vals[:, :k].cpu())
    if backend == "torch":
        return topk_search(query, gallery, topk, metric, gallery_chunk=gallery_chunk, device=device)
    if backend == "faiss":
        return _faiss_search(as_tensor(query), as_tensor(gallery), topk, metric)
    raise ValueError(f"backend must be 'torch' or 'faiss', got {backend!r}")
