"""The model contract (:class:`bdbnet.models.contract.ReIDModel`), checked on every registered
model: what the engine, inference, export and checkpoints rely on. A new architecture is one file
plus a registry line, and these tests run over it by name."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config

from bdbnet.engine.replicas import ReplicaForward
from bdbnet.engine.step import train_step
from bdbnet.files import atomic_save
from bdbnet.losses import BatchHardTripletLoss, BDBLoss, LabelSmoothingCrossEntropy
from bdbnet.models import create_model, list_models, model_kwargs_from_config
from bdbnet.models.contract import PlannedLayer, ReIDModel, StepPlan, TrainOutput
from bdbnet.models.loading import checkpoint_metadata, load_trained_model
from bdbnet.models.preprocess import Preprocessing

NUM_CLASSES = 4
LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])


def build(name: str) -> torch.nn.Module:
    """``name`` at the unit-test size: random weights, the demo's small backbone."""
    cfg = tiny_config(f"model.name={name}", "model.backbone=resnet18")
    torch.manual_seed(0)
    kwargs = model_kwargs_from_config(cfg.model)
    return create_model(name, NUM_CLASSES, pretrained=None, **kwargs)


def images(model: torch.nn.Module, batch: int = 8, seed: int = 0) -> torch.Tensor:
    stride = model.input_stride
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 2 * stride, stride, generator=gen)


@pytest.fixture(params=list_models())
def name(request) -> str:
    return request.param


def test_offers_the_contract(name):
    model = build(name)
    assert isinstance(model, ReIDModel)
    assert isinstance(model.preprocess, Preprocessing)
    assert model.num_classes == NUM_CLASSES and model.feature_dim > 0
    assert model.input_stride > 0 and all(s % model.input_stride == 0 for s in (384, 128))
    assert model.model_name == name


def test_eval_forward_gives_float32_features_and_one_image_works(name):
    model = build(name).eval()
    x = images(model)
    with torch.no_grad():
        feats = model(x)
        one = model(x[:1])
    assert feats.shape == (8, model.feature_dim) and feats.dtype == torch.float32
    assert torch.isfinite(feats).all()
    torch.testing.assert_close(one[0], feats[0], rtol=1e-4, atol=1e-4 * float(feats.abs().max()))


def test_train_forward_gives_branch_features_and_logits_the_losses_take(name):
    model = build(name).train()
    out = model(images(model))
    assert isinstance(out, TrainOutput) and out.features and set(out.logits) <= set(out.features)
    assert all(v.shape[0] == 8 for v in out.features.values())
    assert all(v.shape == (8, NUM_CLASSES) for v in out.logits.values())
    loss = BDBLoss(triplet=BatchHardTripletLoss(), softmax=LabelSmoothingCrossEntropy(0.1))
    total = loss(out, LABELS).total
    total.backward()
    assert torch.isfinite(total)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_planned_layers_draw_from_the_plan_not_the_global_generator(name):
    model = build(name).train()
    planned = [m for m in model.modules() if isinstance(m, PlannedLayer)]
    if not planned:
        pytest.skip(f"{name} has no layer whose draws are planned")
    x = images(model)
    outputs = []
    for seed in (1, 2):  # another global generator state, the same plan
        torch.manual_seed(seed)
        for layer in planned:
            layer.plan = StepPlan(seed=7, chunks=2, index=1)
        with torch.no_grad():
            outputs.append(model(x))
    for key in outputs[0].features:
        torch.testing.assert_close(outputs[0].features[key], outputs[1].features[key])


def test_a_step_runs_through_the_engine_with_replicas(name):
    """The engine's step on the contract alone: two replicas, a plan per step."""
    model = build(name)
    network = ReplicaForward(model, replicas=2, chunk_offset=0, total_chunks=2)
    network.plan_step(3)
    loss = BDBLoss(triplet=BatchHardTripletLoss(), softmax=LabelSmoothingCrossEntropy(0.1))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    terms = train_step(network.train(), images(model), LABELS, loss, optimizer)
    assert torch.isfinite(terms.total)
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.trace: what ONNX export uses
def test_the_eval_graph_traces_for_export(name):
    model = build(name).eval()
    x = images(model, batch=2)
    traced = torch.jit.trace(model, x, check_trace=False)
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(traced(images(model, 3, seed=1)), model(images(model, 3, seed=1)))
    torch.testing.assert_close(traced(x), expected)


def test_a_checkpoint_rebuilds_the_model_with_its_preprocessing(name, tmp_path):
    cfg = tiny_config(f"model.name={name}", "model.backbone=resnet18")
    model = build(name).eval()
    model.preprocess = Preprocessing.from_data_config(cfg.data)
    path = atomic_save(
        {**checkpoint_metadata(cfg, NUM_CLASSES, "synthetic"), "model": model.state_dict()},
        tmp_path / "last.pt",
    )
    loaded, _ = load_trained_model(path)
    assert type(loaded) is type(model) and loaded.preprocess == model.preprocess
    x = images(model)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
