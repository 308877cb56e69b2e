"""Ranked lists of a query set against a gallery, *as the evaluation scored them*: the same
distances (re-ranked where the evaluation was), the same exclusions (same identity and camera,
junk pid -1) and the same tie order (gallery index). The pictures of ``bdbnet evaluate --worst``,
the demo's ranked lists and the saved runs ``bdbnet serve --run`` browses all come from here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from bdbnet.evaluation.distance import as_tensor, pairwise_distance
from bdbnet.evaluation.distance import topk as nearest_k
from bdbnet.evaluation.rerank import iter_re_ranking_features

__all__ = ["rank_gallery", "scored_rankings", "scored_topk", "worst_queries"]


class Labelled(Protocol):
    """An item of a query or gallery split: what the protocol's exclusions read."""

    pid: int
    camid: int


def rank_gallery(
    query: torch.Tensor,
    gallery: torch.Tensor,
    topk: int = 10,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """Indices of the ``topk`` nearest gallery items (Euclidean) for each query row.

    ``exclude`` is a boolean ``(Q, G)`` mask of gallery items to skip (e.g. same identity and
    same camera, as the Market-1501 protocol does); excluded items are never returned, so
    ``topk`` is capped at the smallest number of items any query has left. Ties are broken by
    gallery index (:func:`bdbnet.evaluation.distance.topk`).
    """
    dist = torch.cdist(query.float(), gallery.float())
    if exclude is not None:
        dist = dist.masked_fill(exclude, float("inf"))
    available = gallery.shape[0] if exclude is None else int((~exclude).sum(dim=1).min())
    return nearest_k(dist, min(topk, available))[1]


def worst_queries(ap: np.ndarray, first_match_rank: np.ndarray, n: int) -> list[int]:
    """Indices of the ``n`` worst valid queries: lowest average precision first, then the
    latest first correct match, then query order. Queries skipped by the evaluation (AP
    ``nan``) are never picked."""
    ap = np.asarray(ap, dtype=np.float64)
    first = np.asarray(first_match_rank, dtype=np.int64)
    valid = np.flatnonzero(~np.isnan(ap))
    order = np.lexsort((valid, -first[valid], ap[valid]))
    return valid[order][:n].tolist()


def scored_rankings(
    query_features: torch.Tensor,
    gallery_features: torch.Tensor,
    query: Sequence[Labelled],
    gallery: Sequence[Labelled],
    picks: Sequence[int],
    topk: int = 10,
    metric: str = "euclidean",
    rerank: bool = False,
) -> list[list[int]]:
    """The top-``topk`` gallery indices of the queries ``picks`` *as the evaluation scored
    them*: the same distances (``metric``; k-reciprocal re-ranked over all queries with the
    evaluation's defaults when ``rerank``), the same exclusions (same identity and camera,
    junk pid -1) and the same tie order (gallery index)."""
    indices, _ = scored_topk(
        query_features, gallery_features, query, gallery, picks, topk, metric, rerank
    )
    return indices


def scored_topk(
    query_features: torch.Tensor,
    gallery_features: torch.Tensor,
    query: Sequence[Labelled],
    gallery: Sequence[Labelled],
    picks: Sequence[int],
    topk: int = 10,
    metric: str = "euclidean",
    rerank: bool = False,
    rows_per_block: int = 512,
) -> tuple[list[list[int]], list[list[float]]]:
    """:func:`scored_rankings` with the distances of the ranked items (re-ranked distances
    under ``rerank``), one block of query rows at a time: memory stays one ``block x G``
    distance block whatever the number of picks (``bdbnet evaluate --save-run`` ranks every
    query)."""
    qf, gf = as_tensor(query_features).float(), as_tensor(gallery_features).float()
    g_pid = torch.tensor([r.pid for r in gallery])
    g_cam = torch.tensor([r.camid for r in gallery])
    picks = list(picks)
    out: dict[int, tuple[list[int], list[float]]] = {}

    def rank(rows: list[int], dist: torch.Tensor) -> None:
        q_pid = torch.tensor([query[i].pid for i in rows])
        q_cam = torch.tensor([query[i].camid for i in rows])
        exclude = ((q_pid[:, None] == g_pid[None]) & (q_cam[:, None] == g_cam[None])) | (
            g_pid[None] == -1
        )
        masked = dist.masked_fill(exclude, float("inf"))
        values, order = torch.sort(masked, dim=1, stable=True)
        available = (~exclude).sum(dim=1)
        for i, row, vals, n in zip(rows, order, values, available):
            keep = min(topk, int(n))
            out[i] = (row[:keep].tolist(), vals[:keep].tolist())

    if rerank:  # re-ranking uses every query's neighbours: compute all rows, keep the picks
        wanted = set(picks)
        for start, _, block in iter_re_ranking_features(qf, gf, metric=metric):
            block = as_tensor(block).float().cpu()
            rows = [i for i in range(start, start + block.shape[0]) if i in wanted]
            if rows:
                rank(rows, block[[i - start for i in rows]])
    else:
        for s in range(0, len(picks), rows_per_block):
            rows = picks[s : s + rows_per_block]
            rank(rows, pairwise_distance(qf[rows], gf, metric).float().cpu())
    return [out[i][0] for i in picks], [out[i][1] for i in picks]
