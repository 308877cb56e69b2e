import json

import pytest
import torch
from conftest import needs_native_bf16, tiny_config

from bdbnet.data import build_dataset
from bdbnet.data.records import DatasetSplits
from bdbnet.engine import trainer as trainer_module
from bdbnet.engine.trainer import Trainer
from bdbnet.errors import DataError
from bdbnet.models.loading import load_checkpoint


def train_only(splits: DatasetSplits) -> DatasetSplits:
    """The training split alone, so these tests do not depend on the evaluation suite."""
    return DatasetSplits(splits.name, splits.root, splits.train, [], [])


def test_resume_after_a_kill_gives_identical_weights(tiny_synthetic, tmp_path, monkeypatch):
    splits = train_only(build_dataset("synthetic", tiny_synthetic))
    cfg = tiny_config()
    straight = Trainer.from_config(cfg, splits, tmp_path / "straight")
    straight.fit()
    steps_per_epoch = len(straight.batches)
    assert steps_per_epoch == 2  # 8 identities / P=4

    # Same run, killed in the middle of epoch 2 ...
    calls = {"n": 0}
    real_step = trainer_module.train_step

    def dying_step(*args, **kwargs):
        if calls["n"] == steps_per_epoch + 1:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        Trainer.from_config(tiny_config(), splits, tmp_path / "killed").fit()
    monkeypatch.setattr(trainer_module, "train_step", real_step)
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["epoch"] == 1

    # ... and resumed: epoch 2 replays exactly.
    resumed = Trainer.from_config(tiny_config(), splits, tmp_path / "killed", resume=True)
    assert resumed.start_epoch == 1
    resumed.fit()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    opt_a, opt_b = straight.optimizer.state_dict(), resumed.optimizer.state_dict()
    assert opt_a["param_groups"] == opt_b["param_groups"]


def test_outputs_of_a_run(tiny_synthetic, tmp_path):
    splits = train_only(build_dataset("synthetic", tiny_synthetic))
    cfg = tiny_config("optim.epochs=1", "train.keep_checkpoints=[1]")
    Trainer.from_config(cfg, splits, tmp_path).fit()
    assert (tmp_path / "config.yaml").read_text() == cfg.to_yaml()
    state = load_checkpoint(tmp_path / "epoch_1.pt")
    assert state["epoch"] == 1 and state["num_classes"] == 8
    assert state["preprocess"]["resize"] == [32, 16]
    assert set(state) >= {"model", "optimizer", "scheduler", "rng", "config", "model_kwargs"}
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_lines = [x for x in lines if x["kind"] == "train"]
    assert [x["step"] for x in train_lines] == [1, 2]
    assert {"total", "global/triplet", "drop/softmax", "lr"} <= set(train_lines[0])
    epoch_line = next(x for x in lines if x["kind"] == "epoch")
    assert epoch_line["epoch"] == 1 and epoch_line["images_per_second"] > 0


def test_resume_rejects_a_checkpoint_of_another_dataset(tiny_synthetic, tmp_path):
    splits = train_only(build_dataset("synthetic", tiny_synthetic))
    Trainer.from_config(tiny_config("optim.epochs=1"), splits, tmp_path).fit()
    fewer = DatasetSplits("x", "", [r for r in splits.train if r.pid < 6], [], [])
    with pytest.raises(DataError, match="trained with 8 identities"):
        Trainer.from_config(tiny_config(), fewer, tmp_path, resume=True)


def test_resume_without_checkpoint_starts_fresh(tiny_synthetic, tmp_path):
    splits = train_only(build_dataset("synthetic", tiny_synthetic))
    assert Trainer.from_config(tiny_config(), splits, tmp_path, resume=True).start_epoch == 0


def test_final_evaluation_is_kept_with_its_features(tiny_synthetic, tmp_path):
    splits = build_dataset("synthetic", tiny_synthetic)
    result = Trainer.from_config(tiny_config("optim.epochs=1"), splits, tmp_path).fit()
    assert [e["epoch"] for e in result.evaluations] == [1]
    report = result.last_report
    assert report is not None and report.task == "reid"
    assert {"epoch": 1, "target": "synthetic", **report.metrics} == result.evaluations[-1]
    assert report.query_features.shape[0] == len(splits.query)
    # Resuming a finished run trains and evaluates nothing more.
    again = Trainer.from_config(tiny_config("optim.epochs=1"), splits, tmp_path, resume=True).fit()
    assert again.last_report is None and again.evaluations == result.evaluations


@needs_native_bf16
def test_bf16_training_steps_run_and_learn(tiny_synthetic, tmp_path):
    splits = train_only(build_dataset("synthetic", tiny_synthetic))
    trainer = Trainer.from_config(tiny_config("train.amp=bf16", "optim.epochs=1"), splits, tmp_path)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [x["total"] for x in lines if x["kind"] == "train"]
    assert len(losses) == 2 and all(0 < v < 100 for v in losses)
    after = trainer.model.state_dict()
    assert all(v.dtype == before[k].dtype for k, v in after.items())  # weights stay fp32
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_train_compile_compiles_the_training_network(tiny_synthetic, tmp_path, monkeypatch):
    """``train.compile=true`` hands the network the steps run (replicas, DDP) to torch.compile;
    actually compiling is minutes on a CPU, so the compiler is stood in for here."""
    compiled = []

    def fake_compile(module):
        compiled.append(module)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    splits = train_only(build_dataset("synthetic", tiny_synthetic))
    plain = Trainer.from_config(tiny_config(), splits, tmp_path / "plain")
    assert compiled == []
    trainer = Trainer.from_config(tiny_config("train.compile=true"), splits, tmp_path / "compiled")
    assert compiled == [trainer.replica_forward] and trainer.network is trainer.replica_forward
    assert plain.network is plain.replica_forward


@pytest.mark.cuda
def test_a_gpu_run_decodes_onto_the_device_and_its_checkpoint_resumes(tiny_synthetic, tmp_path):
    """The GPU defaults end to end: the split decoded once onto the GPU (``data.cache=device``),
    augmented there, auto precision (bf16 where supported), channels_last, cuDNN autotuning;
    the checkpoint it writes loads on the CPU and resumes on the GPU."""
    splits = train_only(build_dataset("synthetic", tiny_synthetic))
    gpu = (
        "train.device=cuda",
        "train.amp=auto",
        "train.channels_last=true",
        "train.deterministic=false",
        "data.pipeline=tensor",
        "data.cache=device",
        "optim.epochs=1",
    )
    trainer = Trainer.from_config(tiny_config(*gpu), splits, tmp_path)
    assert torch.backends.cudnn.benchmark is True
    before = {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    assert next(trainer.model.parameters()).device.type == "cuda"
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [x["total"] for x in lines if x["kind"] == "train"]
    assert len(losses) == 2 and all(0 < v < 100 for v in losses)
    after = {k: v.cpu() for k, v in trainer.model.state_dict().items()}
    assert any(not torch.equal(before[k], after[k]) for k in before)
    state = load_checkpoint(tmp_path / "last.pt")  # mapped to the CPU
    assert all(v.device.type == "cpu" for v in state["model"].values())
    resumed = Trainer.from_config(
        tiny_config(*gpu[:-1], "optim.epochs=2"), splits, tmp_path, resume=True
    )
    assert resumed.start_epoch == 1
    resumed.fit()
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2
