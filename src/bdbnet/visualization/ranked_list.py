"""Ranked-list pictures: a query followed by its top-K gallery images.

Drawn with PIL alone so the picture is always produced, even without the ``viz`` extra.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from bdbnet.data.images import read_image
from bdbnet.data.records import ImageRecord

GREEN, RED, GREY = (40, 180, 60), (220, 40, 40), (160, 160, 160)


def rank_gallery(
    query: torch.Tensor,
    gallery: torch.Tensor,
    topk: int = 10,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """Indices of the ``topk`` nearest gallery items (Euclidean) for each query row.

    ``exclude`` is a boolean ``(Q, G)`` mask of gallery items to skip (e.g. same identity and
    same camera, as the Market-1501 protocol does); excluded items are never returned, so
    ``topk`` is capped at the smallest number of items any query has left.
    """
    dist = torch.cdist(query.float(), gallery.float())
    if exclude is not None:
        dist = dist.masked_fill(exclude, float("inf"))
    available = gallery.shape[0] if exclude is None else int((~exclude).sum(dim=1).min())
    return torch.topk(dist, min(topk, available), dim=1, largest=False).indices


def draw_ranked_list(
    queries: Sequence[ImageRecord],
    ranked: Sequence[Sequence[ImageRecord]],
    output: str | os.PathLike[str],
    cell: tuple[int, int] = (128, 64),
    show_labels: bool = True,
) -> Path:
    """Write one row per query: the query (grey border) and its ranked gallery images with a
    green (same identity) or red (different) border and the file name underneath."""
    h, w = cell
    border, caption, gap = 4, 14, 10
    cols = 1 + max((len(r) for r in ranked), default=0)
    cell_w, cell_h = w + 2 * border, h + 2 * border + caption
    canvas = Image.new("RGB", (cols * cell_w + gap, len(queries) * cell_h), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()

    def paste(record: ImageRecord, col: int, row: int, colour: tuple[int, int, int]) -> None:
        x = col * cell_w + (gap if col > 0 else 0)
        y = row * cell_h
        draw.rectangle([x, y, x + cell_w - 1, y + h + 2 * border - 1], fill=colour)
        canvas.paste(read_image(record.path).resize((w, h)), (x + border, y + border))
        name = Path(record.path).name
        label = name if len(name) <= 14 else name[:12] + ".."
        draw.text((x + 1, y + h + 2 * border), label, fill=(0, 0, 0), font=font)

    for row, (query, results) in enumerate(zip(queries, ranked)):
        paste(query, 0, row, GREY)
        for col, item in enumerate(results, start=1):
            colour = (GREEN if item.pid == query.pid else RED) if show_labels else GREY
            paste(item, col, row, colour)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(output)
    return output


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
    query: Sequence[ImageRecord],
    gallery: Sequence[ImageRecord],
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
    query: Sequence[ImageRecord],
    gallery: Sequence[ImageRecord],
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
    from bdbnet.evaluation import as_tensor, iter_re_ranking_features, pairwise_distance

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


def draw_worst_queries(
    query_features: torch.Tensor,
    gallery_features: torch.Tensor,
    query: Sequence[ImageRecord],
    gallery: Sequence[ImageRecord],
    ap: np.ndarray,
    first_match_rank: np.ndarray,
    output: str | os.PathLike[str],
    n: int = 10,
    topk: int = 10,
    metric: str = "euclidean",
    rerank: bool = False,
) -> Path:
    """The ranked lists of the ``n`` worst queries of an evaluation (see
    :func:`worst_queries`), drawn as they were scored (:func:`scored_rankings`: pass the
    evaluation's ``metric`` and ``rerank``)."""
    picks = worst_queries(ap, first_match_rank, n)
    if not picks:
        raise ValueError("no valid query to draw")
    top = scored_rankings(
        query_features, gallery_features, query, gallery, picks, topk, metric, rerank
    )
    ranked = [[gallery[j] for j in row] for row in top]
    return draw_ranked_list([query[i] for i in picks], ranked, output)
