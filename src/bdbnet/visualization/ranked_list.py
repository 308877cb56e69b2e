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
from bdbnet.evaluation.ranked_lists import scored_topk, worst_queries
from bdbnet.visualization.saving import save_picture

GREEN, RED, GREY = (40, 180, 60), (220, 40, 40), (160, 160, 160)


def draw_ranked_list(
    queries: Sequence[ImageRecord],
    ranked: Sequence[Sequence[ImageRecord]],
    output: str | os.PathLike[str],
    cell: tuple[int, int] = (128, 64),
    show_labels: bool = True,
    *,
    title: str | None = None,
    distances: Sequence[Sequence[float]] | None = None,
    notes: Sequence[str] | None = None,
) -> Path:
    """Write one row per query: the query (grey border) and its ranked gallery images with a
    green (same identity) or red (different) border.

    Without annotations each image gets its file name, cut to fit (the compact layout). With
    ``title``, ``distances`` (one list per query, as ranked) or ``notes`` (one line per query,
    e.g. its AP) the picture is annotated: the title on top, ``#rank`` and distance and the whole
    file name (wrapped) under every image, the note under the query and a legend at the bottom.
    """
    annotated = title is not None or distances is not None or notes is not None
    h, w = cell
    border, gap = 4, 10
    font = ImageFont.load_default()
    char_w = max(1, round(font.getlength("0000000000") / 10))
    per_line = max(4, (w + 2 * border) // char_w)
    rows_text = [
        [_caption(q, None, notes[i] if notes else None, per_line, annotated)]
        + [
            _caption(g, (r, distances[i][r - 1] if distances else None), None, per_line, annotated)
            for r, g in enumerate(items, start=1)
        ]
        for i, (q, items) in enumerate(zip(queries, ranked))
    ]
    line_h = 12
    lines = max((len(t) for row in rows_text for t in row), default=1) if annotated else 1
    caption = 14 if not annotated else line_h * lines + 4
    cols = 1 + max((len(r) for r in ranked), default=0)
    cell_w, cell_h = w + 2 * border, h + 2 * border + caption
    top = 22 if title else 0
    bottom = 22 if annotated else 0
    width = max(cols * cell_w + gap, 330 if annotated else 0)
    canvas = Image.new("RGB", (width, top + len(queries) * cell_h + bottom), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((4, 5), title, fill=(0, 0, 0), font=font)

    def paste(record: ImageRecord, col: int, row: int, colour: tuple[int, int, int]) -> None:
        x = col * cell_w + (gap if col > 0 else 0)
        y = top + row * cell_h
        draw.rectangle([x, y, x + cell_w - 1, y + h + 2 * border - 1], fill=colour)
        canvas.paste(read_image(record.path).resize((w, h)), (x + border, y + border))
        for i, text in enumerate(rows_text[row][col]):
            draw.text((x + 1, y + h + 2 * border + i * line_h), text, fill=(0, 0, 0), font=font)

    for row, (query, results) in enumerate(zip(queries, ranked)):
        paste(query, 0, row, GREY)
        for col, item in enumerate(results, start=1):
            colour = (GREEN if item.pid == query.pid else RED) if show_labels else GREY
            paste(item, col, row, colour)
    if annotated:
        _legend(draw, font, canvas.size[1] - bottom + 5, show_labels)
    return save_picture(canvas, output)


def _caption(
    record: ImageRecord,
    rank: tuple[int, float | None] | None,
    note: str | None,
    per_line: int,
    annotated: bool,
) -> list[str]:
    """The text under one image: compact, the name cut to fit; annotated, a header line
    (``query`` and its note, or ``#rank`` and distance) and the whole name wrapped."""
    name = Path(record.path).name
    if not annotated:
        return [name if len(name) <= 14 else name[:12] + ".."]
    if rank is None:
        head = "query" + (f" {note}" if note else "")
    else:
        head = f"#{rank[0]}" + (f" d={rank[1]:#.3g}" if rank[1] is not None else "")
    wrapped = [name[i : i + per_line] for i in range(0, len(name), per_line)]
    return [head[: per_line + 4], *wrapped]


def _legend(draw: ImageDraw.ImageDraw, font, y: int, labelled: bool) -> None:
    entries = [(GREY, "query")]
    entries += [(GREEN, "same identity"), (RED, "different identity")] if labelled else []
    x = 4
    for colour, text in entries:
        draw.rectangle([x, y, x + 11, y + 11], fill=colour)
        draw.text((x + 15, y), text, fill=(0, 0, 0), font=font)
        x += 15 + int(font.getlength(text)) + 14


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
    annotate: bool = False,
    ap_mode: str | None = None,
) -> Path:
    """The ranked lists of the ``n`` worst queries of an evaluation (see
    :func:`worst_queries`), drawn as they were scored (:func:`scored_rankings`: pass the
    evaluation's ``metric`` and ``rerank``). ``annotate``: a title, each row's AP (``ap_mode``
    names its definition), rank and distance under every image, a legend."""
    picks = worst_queries(ap, first_match_rank, n)
    if not picks:
        raise ValueError("no valid query to draw")
    indices, distances = scored_topk(
        query_features, gallery_features, query, gallery, picks, topk, metric, rerank
    )
    ranked = [[gallery[j] for j in row] for row in indices]
    if not annotate:
        return draw_ranked_list([query[i] for i in picks], ranked, output)
    scoring = f"{metric} distance" + (", re-ranked" if rerank else "")
    return draw_ranked_list(
        [query[i] for i in picks],
        ranked,
        output,
        title=f"{len(picks)} queries with the lowest AP ({ap_mode or 'AP'}; {scoring})",
        distances=distances,
        notes=[f"AP {100 * float(ap[i]):.1f}%" for i in picks],
    )
