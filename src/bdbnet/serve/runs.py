"""Saved evaluations (``bdbnet evaluate --save-run DIR``), browsed by ``bdbnet serve --run DIR``.

A run keeps what the browser shows and nothing it can recompute: the query and gallery paths
and labels, each query's AP and first correct rank, and each query's top-K ranking *as the
evaluation scored it* (:func:`bdbnet.evaluation.ranked_lists.scored_topk`: the same distances,
re-ranked under ``--rerank``, the same exclusions and tie order), with those distances. No
features are kept, so a Market-1501 run is a few megabytes.

One file, ``DIR/run.npz`` (loads without pickle), written atomically (a temporary file in the
same folder, then a rename):

=====================  =====================================================================
``metadata``           UTF-8 JSON as uint8: format, version, dataset, checkpoint identity,
                       metric, rerank, AP definition, metrics, K
``query_paths``        UTF-8 of the newline-joined paths (absolute), uint8; same for gallery
``query_pids``, ...    int64 identities and 0-based cameras of both sets
``ap``                 float64 (Q,): AP of each query (``nan``: skipped, no valid match)
``first_match_rank``   int64 (Q,): 1-based rank of the first correct match (0: none)
``topk_indices``       int64 (Q, K): gallery indices, best first; ``-1`` pads short rows
``topk_distances``     float32 (Q, K): their distances; ``nan`` pads
=====================  =====================================================================
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bdbnet.errors import BDBNetError, OutputError
from bdbnet.evaluation.ranked_lists import scored_topk, worst_queries
from bdbnet.files import atomic_write, decode_lines, encode_lines, file_sha256
from bdbnet.serve.settings import DEFAULT_RUN_TOPK

__all__ = ["DEFAULT_TOPK", "FORMAT", "RUN_FILE", "RunError", "SavedRun", "load_run", "save_run"]

FORMAT = "bdbnet-evaluation-run"
VERSION = 1
RUN_FILE = "run.npz"
DEFAULT_TOPK = DEFAULT_RUN_TOPK


class RunError(BDBNetError, ValueError):
    """A saved run is missing, unreadable or inconsistent, or cannot be made from an
    evaluation (a retrieval evaluation has no per-query re-ID ranking)."""


@dataclass
class SavedRun:
    """A loaded run; row ``q`` of ``topk_indices`` ranks the gallery for query ``q``."""

    metadata: dict[str, Any]
    query_paths: list[str]
    query_pids: np.ndarray
    query_camids: np.ndarray
    gallery_paths: list[str]
    gallery_pids: np.ndarray
    gallery_camids: np.ndarray
    ap: np.ndarray
    first_match_rank: np.ndarray
    topk_indices: np.ndarray
    topk_distances: np.ndarray

    @property
    def num_queries(self) -> int:
        return len(self.query_paths)

    def worst_first(self) -> list[int]:
        """Every query, lowest AP first (then the latest first correct match, then query
        order: :func:`~bdbnet.evaluation.ranked_lists.worst_queries`), queries without AP
        last."""
        ranked = worst_queries(self.ap, self.first_match_rank, self.num_queries)
        rest = [i for i in range(self.num_queries) if np.isnan(self.ap[i])]
        return ranked + rest

    def ranking(self, q: int) -> list[tuple[int, float]]:
        """(gallery index, distance) of query ``q``'s ranked list, best first."""
        row, dist = self.topk_indices[q], self.topk_distances[q]
        return [(int(i), float(d)) for i, d in zip(row, dist) if i >= 0]


def check_run_output(path: str | os.PathLike[str], splits: Any) -> Path:
    """What ``evaluate --save-run DIR`` checks before the evaluation starts: a re-ID dataset
    (a retrieval evaluation has no per-query ranking to browse) and a writable folder."""
    from bdbnet.outputs import ensure_output_dir

    if getattr(splits, "task", "reid") != "reid":
        raise RunError(
            f"--save-run keeps re-ID evaluations (query/gallery with cameras); "
            f"{splits.name} is a {splits.task} dataset"
        )
    return ensure_output_dir(path, "--save-run folder")


def save_run(
    report: Any,
    splits: Any,
    path: str | os.PathLike[str],
    *,
    cfg: Any = None,
    checkpoint: str | os.PathLike[str] | None = None,
    dataset: str = "",
    topk: int = DEFAULT_TOPK,
) -> Path:
    """Write ``DIR/run.npz`` for the evaluation ``report`` (an
    :class:`~bdbnet.inference.dataset_eval.EvalReport` of a re-ID dataset) of ``splits``; the
    rankings are those the evaluation scored: ``cfg`` (the evaluation's config) gives its
    metric and ``eval.rerank``. ``checkpoint`` is recorded with its SHA-256."""

    ev = cfg.eval if cfg is not None else None
    metric = ev.metric if ev is not None else "euclidean"
    rerank = bool(ev.rerank) if ev is not None else False
    model = None
    if checkpoint is not None:
        model = {"checkpoint": os.path.abspath(checkpoint), "sha256": file_sha256(checkpoint)}
    settings = {name: getattr(ev, name) for name in ("flip", "aqe") if hasattr(ev, name)}

    result = report.rank
    if result is None:
        raise RunError("--save-run keeps re-ID evaluations only (no per-query ranking here)")
    query, gallery = splits.query, splits.gallery
    picks = list(range(len(query)))
    indices, distances = scored_topk(
        report.query_features,
        report.gallery_features,
        query,
        gallery,
        picks,
        topk,
        metric,
        rerank,
    )
    k = max((len(row) for row in indices), default=0)
    top_i = np.full((len(query), k), -1, dtype=np.int64)
    top_d = np.full((len(query), k), np.nan, dtype=np.float32)
    for q, (row, dist) in enumerate(zip(indices, distances)):
        top_i[q, : len(row)] = row
        top_d[q, : len(dist)] = dist
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "dataset": dataset or splits.name,
        "root": str(splits.root),
        "model": model,
        "metric": metric,
        "rerank": rerank,
        **settings,
        "ap_mode": result.ap_mode,
        "metrics": {
            key: value
            for key, value in report.metrics.items()
            if isinstance(value, float | int | str)
        },
        "topk": k,
    }
    arrays = {
        "metadata": np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8),
        "query_paths": encode_lines([os.path.abspath(r.path) for r in query], OutputError),
        "query_pids": np.array([r.pid for r in query], dtype=np.int64),
        "query_camids": np.array([r.camid for r in query], dtype=np.int64),
        "gallery_paths": encode_lines([os.path.abspath(r.path) for r in gallery], OutputError),
        "gallery_pids": np.array([r.pid for r in gallery], dtype=np.int64),
        "gallery_camids": np.array([r.camid for r in gallery], dtype=np.int64),
        "ap": np.asarray(result.ap, dtype=np.float64),
        "first_match_rank": np.asarray(result.first_match_rank, dtype=np.int64),
        "topk_indices": top_i,
        "topk_distances": top_d,
    }
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / RUN_FILE
    return atomic_write(target, lambda f: np.savez_compressed(f, **arrays))


def load_run(path: str | os.PathLike[str]) -> SavedRun:
    """Read a run folder (or its ``run.npz``), checking every shape; a missing, corrupt or
    inconsistent run raises :class:`RunError` naming it."""
    path = Path(path)
    file = path / RUN_FILE if path.is_dir() else path
    if not file.is_file():
        raise RunError(f"no saved run at {path}: write one with bdbnet evaluate --save-run DIR")
    try:
        with np.load(file, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise RunError(f"{file}: not a readable saved run ({err})") from err
    try:
        meta = json.loads(arrays["metadata"].astype(np.uint8).tobytes().decode("utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError("not a bdbnet evaluation run")
        if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
            raise ValueError(f"run version {meta.get('version')!r} is newer than this bdbnet's")
        n_q, n_g = len(arrays["query_pids"]), len(arrays["gallery_pids"])
        run = SavedRun(
            meta,
            decode_lines(arrays["query_paths"], n_q),
            arrays["query_pids"].astype(np.int64),
            arrays["query_camids"].astype(np.int64),
            decode_lines(arrays["gallery_paths"], n_g),
            arrays["gallery_pids"].astype(np.int64),
            arrays["gallery_camids"].astype(np.int64),
            arrays["ap"].astype(np.float64),
            arrays["first_match_rank"].astype(np.int64),
            arrays["topk_indices"].astype(np.int64),
            arrays["topk_distances"].astype(np.float32),
        )
        _check_shapes(run, n_q, n_g)
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as err:
        raise RunError(f"{file}: inconsistent saved run ({err}); write it again") from err
    return run


def _check_shapes(run: SavedRun, n_q: int, n_g: int) -> None:
    for name in ("query_camids", "ap", "first_match_rank"):
        if getattr(run, name).shape != (n_q,):
            raise ValueError(f"{name} has shape {getattr(run, name).shape}, expected ({n_q},)")
    if run.gallery_camids.shape != (n_g,):
        raise ValueError(f"gallery_camids has shape {run.gallery_camids.shape}")
    top = run.topk_indices
    if top.ndim != 2 or top.shape[0] != n_q or run.topk_distances.shape != top.shape:
        raise ValueError(f"rankings of shape {top.shape} for {n_q} queries")
    if top.size and (top.max() >= n_g or top.min() < -1):
        raise ValueError(f"a ranked index lies outside the gallery of {n_g} images")
