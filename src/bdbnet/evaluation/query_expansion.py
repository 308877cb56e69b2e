"""α-query expansion (AQE), with the semantics of fast-reid's ``aqe`` (``TEST.AQE``).

Radenović, Tolias, Chum, "Fine-tuning CNN Image Retrieval with No Human Annotation" (TPAMI 2018)
replace every descriptor by a similarity-weighted mean of its nearest neighbours; fast-reid offers
it for re-ID evaluation with ``QE_K = 5``, ``ALPHA = 3.0`` and one pass (``QE_TIME = 1``). The
exact semantics, read from fast-reid's ``fastreid/evaluation/query_expansion.py`` and its
evaluator, which this module reproduces:

* the database is the **joint** set ``query ∪ gallery`` (queries are expanded with other
  queries too, and gallery items with queries), searched by cosine similarity of the
  L2-normalised features;
* the ``k`` neighbours are the top ``k`` of that search **including the item itself** (its
  similarity is 1, so it always ranks first): ``k = 5`` means the item and 4 others;
* the new feature is ``sum_j s_j**alpha * f_j`` over those ``k`` items, where ``f_j`` are the
  **original** (not normalised) features and ``s_j`` the cosine similarities; all items are
  expanded from the original features (one pass, not sequentially updated);
* fast-reid returns that mean unnormalised and its default metric (cosine) normalises it; here
  the result is L2-normalised, so Euclidean and cosine distances on it rank exactly as
  fast-reid's cosine evaluation does.

One deliberate difference: a neighbour with a negative similarity gets weight 0 (fast-reid's
``s**alpha`` would be negative for odd ``alpha`` and NaN for fractional ``alpha``); among the top
``k`` of a real gallery no such neighbour occurs.

The similarities are computed block by block (:func:`~bdbnet.evaluation.distance.
iter_pairwise_distance`), so no ``N x N`` matrix is ever held: memory beyond the features is one
block of about 8M similarities plus ``rows x k x dim`` gathered features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bdbnet.evaluation.distance import (
    ArrayLike,
    as_tensor,
    auto_chunk_rows,
    iter_pairwise_distance,
    topk,
)

__all__ = ["alpha_query_expansion"]


def _features(x: ArrayLike, device: torch.device | str | None, name: str) -> torch.Tensor:
    t = as_tensor(x, device=device)
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D (num_items, dim), got shape {tuple(t.shape)}")
    return t if t.dtype == torch.float64 else t.float()


def alpha_query_expansion(
    query_feats: ArrayLike,
    gallery_feats: ArrayLike | None = None,
    k: int = 5,
    alpha: float = 3.0,
    *,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Expanded, L2-normalised query and gallery features (see the module docstring).

    Parameters
    ----------
    query_feats, gallery_feats:
        ``(Q, D)`` and ``(G, D)`` features (NumPy or torch, CPU or CUDA). ``gallery_feats=None``
        expands the query set against itself (retrieval's leave-one-out protocol).
    k:
        Items averaged per feature, the item itself included (capped at ``Q + G``).
    alpha:
        Exponent of the cosine-similarity weights; ``alpha = 0`` is plain average query
        expansion over the ``k`` nearest items.
    chunk_size:
        Rows of the joint set per similarity block (default: about 8M similarities).

    Returns
    -------
    ``(query, gallery)`` as float32 (float64 if given float64) tensors on the features' device;
    ``gallery`` is ``None`` when ``gallery_feats`` was.

    Examples
    --------
    >>> import numpy as np
    >>> q = np.array([[1.0, 0.0]], dtype=np.float32)
    >>> g = np.array([[0.0, 1.0], [3.0, 1.0]], dtype=np.float32)
    >>> nq, ng = alpha_query_expansion(q, g, k=2, alpha=0.0)  # itself + its nearest other item
    >>> [round(v, 4) for v in nq[0].tolist()], [round(v, 4) for v in ng[0].tolist()]
    ([0.9701, 0.2425], [0.8321, 0.5547])
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    q = _features(query_feats, device, "query_feats")
    parts = [q]
    if gallery_feats is not None:
        g = _features(gallery_feats, q.device, "gallery_feats")
        if g.shape[1] != q.shape[1]:
            raise ValueError(f"feature dims differ: {q.shape[1]} vs {g.shape[1]}")
        if g.dtype != q.dtype:
            q, g = q.double(), g.double()
            parts = [q]
        parts.append(g)
    joint = torch.cat(parts) if len(parts) > 1 else q
    n = joint.shape[0]
    out = torch.empty_like(joint)
    if n:
        k = min(k, n)
        rows = chunk_size if chunk_size is not None else auto_chunk_rows(n)
        unit = F.normalize(joint, dim=1)
        # y=None: the exact-zero diagonal makes every item its own first neighbour (similarity 1).
        for start, stop, dist in iter_pairwise_distance(unit, None, "cosine", chunk_size=rows):
            d, idx = topk(dist, k)
            weights = (1.0 - d).clamp_(min=0.0).pow_(alpha)
            mixed = torch.einsum("rk,rkd->rd", weights, joint[idx])
            out[start:stop] = F.normalize(mixed, dim=1)
    num_q = q.shape[0]
    return out[:num_q], (out[num_q:] if gallery_feats is not None else None)
