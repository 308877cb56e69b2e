"""evaluate_model: which image path feeds which model."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import calibrated_bdbnet, tiny_config

from bdbnet.data import build_dataset
from bdbnet.inference import embed
from bdbnet.inference.dataset_eval import evaluate_model
from bdbnet.inference.runtimes.base import RuntimeInfo


class GraphLike:
    """A PyTorch model behind the runtime interface, reporting itself as ONNX Runtime."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.preprocess = model.eval(), model.preprocess
        self.feature_dim, self.device = model.feature_dim, torch.device("cpu")
        self.info = RuntimeInfo(path=__file__, runtime="onnxruntime", precision="fp32")

    def embed(self, images: torch.Tensor, flip: bool = False) -> torch.Tensor:
        with torch.no_grad():
            return self.model(images)


def test_an_exported_graph_is_fed_by_threads_not_forked_workers(tiny_synthetic, monkeypatch):
    """ONNX Runtime's and OpenVINO's thread pools do not survive a fork: with ``data.workers``
    set and the PIL pipeline, a graph runtime's images are still decoded in threads, to the
    metrics of the worker-process path."""
    splits = build_dataset("synthetic", tiny_synthetic)
    model = calibrated_bdbnet(num_classes=splits.num_train_pids, backbone="resnet18")
    cfg = tiny_config("data.workers=2")
    assert cfg.data.pipeline == "pil"
    device = torch.device("cpu")
    forked = evaluate_model(model, splits, cfg, device, progress=False)

    def no_loader(*args, **kwargs):
        raise AssertionError("a DataLoader was built for an exported graph")

    monkeypatch.setattr(embed, "DataLoader", no_loader)
    graph = evaluate_model(GraphLike(model), splits, cfg, device, progress=False)
    assert graph.metrics == forked.metrics  # the same pixels either way
    with pytest.raises(AssertionError, match="DataLoader was built"):  # PyTorch keeps workers
        evaluate_model(model, splits, cfg, device, progress=False)


def test_the_torch_runtime_keeps_the_configured_worker_processes(tiny_synthetic, monkeypatch):
    splits = build_dataset("synthetic", tiny_synthetic)
    runtime = GraphLike(calibrated_bdbnet(num_classes=splits.num_train_pids, backbone="resnet18"))
    runtime.info = replace(runtime.info, runtime="torch")
    built = []
    real = embed.DataLoader
    monkeypatch.setattr(embed, "DataLoader", lambda *a, **k: built.append(k) or real(*a, **k))
    evaluate_model(runtime, splits, tiny_config("data.workers=0"), torch.device("cpu"))
    assert [k["num_workers"] for k in built] == [0, 0]  # query, gallery
