"""Evaluate a model on a dataset's query/gallery (re-ID) or test split (retrieval): extract
the features with the test preprocessing, then score them with the dataset's protocol
(:mod:`bdbnet.evaluation`). Training's evaluation callback and ``bdbnet evaluate`` both run it."""

from __future__ import annotations

import torch

from bdbnet.config import Config
from bdbnet.data.pipelines.tensor import TensorRecipe
from bdbnet.data.records import DatasetSplits
from bdbnet.data.transforms import inference_transform
from bdbnet.evaluation import evaluate_features, recall_at_k
from bdbnet.evaluation.query_expansion import alpha_query_expansion
from bdbnet.evaluation.report import EvalReport, reid_metrics
from bdbnet.inference.embed import extract_features
from bdbnet.inference.runtimes.base import InferenceRuntime
from bdbnet.models.preprocess import Preprocessing
from bdbnet.runtime.distributed import (
    DistContext,
    broadcast_object,
    gather_shards,
    shard_range,
    sync_buffers,
)


def evaluate_model(
    model: torch.nn.Module | InferenceRuntime,
    splits: DatasetSplits,
    cfg: Config,
    device: torch.device,
    progress: bool = True,
    ctx: DistContext | None = None,
    amp: str = "none",
    channels_last: bool = False,
    preprocess: Preprocessing | None = None,
) -> EvalReport:
    """Extract features with the model's preprocessing (``model.preprocess``, or
    ``preprocess``) and score them with the dataset's protocol (``cfg.eval``, ``cfg.data``'s
    batch size, workers and pipeline).

    Under DDP (``ctx``) each rank extracts a contiguous shard of every split and the features
    are gathered in dataset order, so the metrics are those of a single process; rank 0 scores
    them and every rank gets its metrics (the features and per-query details stay on rank 0).
    ``model`` is a PyTorch model (``amp`` and ``channels_last`` are then its inference
    settings, :func:`~bdbnet.inference.embed.embed_batch`: training passes its own) or any
    :class:`~bdbnet.inference.runtimes.InferenceRuntime`, so an exported model is evaluated
    with the protocol of its checkpoint (its images decoded in ``cfg.data.workers`` threads,
    whatever ``data.pipeline`` says: no worker process is forked from a runtime's process).
    """
    ctx = ctx or DistContext(device=device)
    spec = preprocess or model.preprocess
    common = dict(
        transform=inference_transform(spec),
        device=device,
        batch_size=cfg.data.test_batch_size,
        flip=cfg.eval.flip,
        amp=amp,
        workers=cfg.data.workers,
        channels_last=channels_last,
        progress=progress and ctx.is_main,
    )

    block = cfg.data.test_batch_size
    # An exported graph's runtime (ONNX Runtime, OpenVINO) has started its thread pools by now;
    # forking DataLoader workers from such a process is unsafe (TBB's and ORT's threads do not
    # survive a fork), so its images are decoded in threads, which give the same features.
    graph = not isinstance(model, torch.nn.Module) and model.info.runtime != "torch"
    threads = cfg.data.pipeline == "tensor" or graph
    decode = TensorRecipe.from_preprocessing(spec) if threads else None

    def features(records, desc: str) -> torch.Tensor:
        mine = [records[i] for i in shard_range(len(records), ctx, block)]
        local = extract_features(model, mine, desc=desc, decode=decode, **common)
        return gather_shards(local, len(records), ctx, block)

    if isinstance(model, torch.nn.Module):
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
    return EvalReport("reid", reid_metrics(result), result, query, gallery)


def _expand(query: torch.Tensor, gallery: torch.Tensor | None, cfg: Config):
    """α-query expansion of both feature sets when ``eval.aqe`` asks for it."""
    if not cfg.eval.aqe:
        return query, gallery
    return alpha_query_expansion(query, gallery, cfg.eval.aqe_k, cfg.eval.aqe_alpha)
