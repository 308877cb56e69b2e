"""Evaluate a model on a dataset's query/gallery (re-ID) or test split (retrieval)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from bdbnet.config import Config
from bdbnet.data.pipelines.tensor import test_recipe_from_config
from bdbnet.data.recipes import build_test_transform
from bdbnet.data.records import DatasetSplits
from bdbnet.engine.distributed import (
    DistContext,
    broadcast_object,
    gather_shards,
    shard_range,
    sync_buffers,
)
from bdbnet.engine.features import extract_features

#: The AP definitions, each also reported as ``mAP_<mode>`` (bdbnet.evaluation.rank).
AP_KEYS = {mode: f"mAP_{mode}" for mode in ("full", "truncated", "trapezoid")}


@dataclass
class EvalReport:
    """Headline numbers of one evaluation (fractions in [0, 1]).

    Re-ID ``metrics`` also name the AP definition behind ``mAP`` (``"ap_mode"``, a string) and
    carry all three definitions (``mAP_full``, ``mAP_truncated``, ``mAP_trapezoid``), so every
    log line and JSON file built from them says which mAP it is.
    """

    task: str
    metrics: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ap_mode(self) -> str | None:
        return self.metrics.get("ap_mode")

    def headline(self) -> dict[str, float]:
        """The numbers to print: every float except the extra AP definitions."""
        extra = set(AP_KEYS.values())
        return {k: v for k, v in self.metrics.items() if isinstance(v, float) and k not in extra}

    def label(self, key: str) -> str:
        """Column name of ``key``: ``mAP`` with its AP definition, e.g. ``mAP (truncated)``."""
        return f"mAP ({self.ap_mode})" if key == "mAP" and self.ap_mode else key

    def summary(self) -> str:
        return "  ".join(f"{self.label(k)} {100 * v:.1f}" for k, v in self.headline().items())


def evaluate_model(
    model: torch.nn.Module,
    splits: DatasetSplits,
    cfg: Config,
    device: torch.device,
    progress: bool = True,
    ctx: DistContext | None = None,
) -> EvalReport:
    """Extract features with the test transform and score them with the dataset's protocol.

    Under DDP (``ctx``) each rank extracts a contiguous shard of every split and the features
    are gathered in dataset order, so the metrics are those of a single process; rank 0 scores
    them and every rank gets its metrics (the features and per-query details stay on rank 0).
    """
    ctx = ctx or DistContext(device=device)
    transform = build_test_transform(cfg.data)
    common = dict(
        transform=transform,
        device=device,
        batch_size=cfg.data.test_batch_size,
        flip=cfg.eval.flip,
        amp=cfg.train.amp,
        workers=cfg.data.workers,
        channels_last=cfg.train.channels_last,
        progress=progress and ctx.is_main,
    )

    block = cfg.data.test_batch_size
    decode = test_recipe_from_config(cfg.data) if cfg.data.pipeline == "tensor" else None

    def features(records, desc: str) -> torch.Tensor:
        mine = [records[i] for i in shard_range(len(records), ctx, block)]
        local = extract_features(model, mine, desc=desc, decode=decode, **common)
        return gather_shards(local, len(records), ctx, block)

    sync_buffers(model, ctx)
    query = features(splits.query, "query")
    same = splits.gallery is splits.query or not splits.gallery
    gallery = None if splits.task == "retrieval" and same else features(splits.gallery, "gallery")
    report = score(query, gallery, splits, cfg) if ctx.is_main else None
    metrics = broadcast_object(report.metrics if report is not None else None, ctx)
    return report if report is not None else EvalReport(splits.task, metrics)


def score(
    query: torch.Tensor, gallery: torch.Tensor | None, splits: DatasetSplits, cfg: Config
) -> EvalReport:
    """Metrics of extracted features under the dataset's protocol (CMC/mAP/mINP or Recall@K)."""
    from bdbnet.evaluation import evaluate_features, recall_at_k

    query, gallery = _expand(query, gallery, cfg)
    if splits.task == "retrieval":
        labels = torch.tensor([r.pid for r in splits.query])
        g_labels = None if gallery is None else torch.tensor([r.pid for r in splits.gallery])
        recalls = recall_at_k(query, labels, gallery, g_labels, ks=tuple(cfg.eval.recall_ks))
        return EvalReport("retrieval", {f"R@{k}": float(v) for k, v in recalls.items()})
    result = evaluate_features(
        query,
        gallery,
        torch.tensor([r.pid for r in splits.query]),
        torch.tensor([r.pid for r in splits.gallery]),
        torch.tensor([r.camid for r in splits.query]),
        torch.tensor([r.camid for r in splits.gallery]),
        metric=cfg.eval.metric,
        rerank=cfg.eval.rerank,
        max_rank=cfg.eval.max_rank,
        ap_mode=cfg.eval.ap_mode,
    )
    metrics: dict[str, Any] = {
        "mAP": float(result.mAP),
        "Rank-1": float(result.cmc[0]),
        "Rank-5": float(result.cmc[min(4, len(result.cmc) - 1)]),
        "Rank-10": float(result.cmc[min(9, len(result.cmc) - 1)]),
        "mINP": float(result.mINP),
        "ap_mode": result.ap_mode,
        **{key: float(result.map_by_mode[mode]) for mode, key in AP_KEYS.items()},
    }
    details = {
        "cmc": [float(x) for x in result.cmc],
        "num_valid_queries": int(result.num_valid_queries),
        "query_features": query,
        "gallery_features": gallery,
        "rank_results": result,  # per-query ap / first_match_rank, e.g. for failure pictures
    }
    return EvalReport("reid", metrics, details)


def _expand(query: torch.Tensor, gallery: torch.Tensor | None, cfg: Config):
    """α-query expansion of both feature sets when ``eval.aqe`` asks for it."""
    if not cfg.eval.aqe:
        return query, gallery
    from bdbnet.evaluation.query_expansion import alpha_query_expansion

    return alpha_query_expansion(query, gallery, cfg.eval.aqe_k, cfg.eval.aqe_alpha)
