"""Checkpointing, evaluation, best-model keeping and logging around the training loop: nothing
is lost when a step or an evaluation fails."""

import json
import stat

import pytest
import torch
from conftest import TINY_OVERRIDES, tiny_config

from bdbnet.cli import main
from bdbnet.data import build_dataset
from bdbnet.engine.callbacks import evaluation as evaluation_module
from bdbnet.engine.trainer import Trainer
from bdbnet.errors import TrainingError
from bdbnet.losses import BDBLoss
from bdbnet.models.loading import load_checkpoint


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_synthetic, tmp_path):
    splits = build_dataset("synthetic", tiny_synthetic)
    trainer = Trainer.from_config(tiny_config("optim.epochs=3"), splits, tmp_path)
    calls = {"n": 0}
    real = trainer.criterion

    def nan_from_step_3(output, labels):
        calls["n"] += 1
        loss = real(output, labels)
        if calls["n"] >= 3:  # the first step of epoch 2
            loss.total = loss.total + float("nan")
            loss.terms["drop/softmax"] = loss.terms["drop/softmax"] + float("nan")
        return loss

    trainer.criterion = nan_from_step_3
    with pytest.raises(TrainingError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert message.startswith("non-finite loss: drop/softmax = nan")
    assert "at epoch 2, iteration 1 of 2 (step 3)" in message
    assert "last good checkpoint (epoch 1) is kept" in message
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())

    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    for line in (tmp_path / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=refuse)  # strict JSON, no NaN tokens


def test_the_message_names_the_epoch_the_checkpoint_holds(tiny_synthetic, tmp_path):
    """With a checkpoint every 2 epochs, a NaN in epoch 4 keeps epoch 2's, and says so."""
    splits = build_dataset("synthetic", tiny_synthetic)
    cfg = tiny_config("optim.epochs=5", "train.checkpoint_every=2")
    trainer = Trainer.from_config(cfg, splits, tmp_path)
    real, calls = trainer.criterion, {"n": 0}

    def nan_in_epoch_4(output, labels):
        calls["n"] += 1
        loss = real(output, labels)
        if calls["n"] > 6:  # two steps per epoch: the first step of epoch 4
            loss.total = loss.total + float("nan")
            loss.terms["drop/softmax"] = loss.terms["drop/softmax"] + float("nan")
        return loss

    trainer.criterion = nan_in_epoch_4
    with pytest.raises(TrainingError, match=r"at epoch 4, .*last good checkpoint \(epoch 2\)"):
        trainer.fit()
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2


def test_the_command_line_exits_2_with_the_message(tiny_synthetic, tmp_path, capsys, monkeypatch):
    real = BDBLoss.forward

    def nan_loss(self, output, labels):
        loss = real(self, output, labels)
        loss.total = loss.total * float("nan")
        loss.terms["global/triplet"] = loss.terms["global/triplet"] * float("nan")
        return loss

    monkeypatch.setattr(BDBLoss, "forward", nan_loss)
    args = ["train", "--dataset", "synthetic", "--root", str(tiny_synthetic)]
    args += ["--preset", "synthetic-demo", "--output", str(tmp_path), *TINY_OVERRIDES]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "error: non-finite loss: global/triplet = nan" in err and "epoch 1, iteration 1" in err
    assert "no checkpoint was written yet" in err and "last good checkpoint" not in err
    assert "Traceback" not in err
    assert not (tmp_path / "last.pt").exists()  # no checkpoint of a broken model


def test_an_evaluation_crash_keeps_the_epoch_and_resume_evaluates_it(
    tiny_synthetic, tmp_path, monkeypatch
):
    splits = build_dataset("synthetic", tiny_synthetic)
    cfg = tiny_config("optim.epochs=2", "train.eval_every=1")
    real = evaluation_module.evaluate_model

    def broken(*args, **kwargs):
        raise OSError("gallery disk went away")

    monkeypatch.setattr(evaluation_module, "evaluate_model", broken)
    with pytest.raises(OSError, match="gallery disk"):
        Trainer.from_config(cfg, splits, tmp_path).fit()
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1  # the epoch is not lost
    monkeypatch.setattr(evaluation_module, "evaluate_model", real)
    result = Trainer.from_config(cfg, splits, tmp_path, resume=True).fit()
    assert [e["epoch"] for e in result.evaluations] == [1, 2]  # the missed one first
    evals = [
        json.loads(x)["epoch"]
        for x in (tmp_path / "metrics.jsonl").read_text().splitlines()
        if json.loads(x)["kind"] == "eval"
    ]
    assert evals == [1, 2]


def test_a_run_stopped_between_two_targets_evaluates_the_missing_one_first(
    tiny_synthetic, tmp_path, monkeypatch
):
    from bdbnet.data.sources import EvalTarget
    from bdbnet.data.synthetic import generate_synthetic_reid

    other = tmp_path / "b" / "synthetic"
    generate_synthetic_reid(other, train_ids=5, test_ids=4, seed=1, distractors=2, junk=1)
    splits = build_dataset("synthetic", tiny_synthetic)
    targets = [EvalTarget("A", splits), EvalTarget("B", build_dataset("synthetic", other))]
    cfg = tiny_config("optim.epochs=1")
    real = evaluation_module.evaluate_model

    def fails_on_b(model, target_splits, *args, **kwargs):
        if target_splits is targets[1].splits:
            raise OSError("gallery disk went away")
        return real(model, target_splits, *args, **kwargs)

    run = tmp_path / "run"
    monkeypatch.setattr(evaluation_module, "evaluate_model", fails_on_b)
    with pytest.raises(OSError, match="gallery disk"):
        Trainer.from_config(cfg, splits, run, targets=targets).fit()
    kept = load_checkpoint(run / "last.pt")["evaluations"]
    assert [(e["epoch"], e["target"]) for e in kept] == [(1, "A")]  # A's record is kept
    evaluated = []

    def counted(model, target_splits, *args, **kwargs):
        evaluated.append(target_splits.root)
        return real(model, target_splits, *args, **kwargs)

    monkeypatch.setattr(evaluation_module, "evaluate_model", counted)
    result = Trainer.from_config(cfg, splits, run, resume=True, targets=targets).fit()
    assert [(e["epoch"], e["target"]) for e in result.evaluations] == [(1, "A"), (1, "B")]
    assert evaluated == [targets[1].splits.root]  # B alone: A's record was kept


def test_keep_best_writes_best_pt_selected_on_the_test_split(tiny_synthetic, tmp_path, capsys):
    args = ["train", "--dataset", "synthetic", "--root", str(tiny_synthetic)]
    args += ["--preset", "synthetic-demo", "--output", str(tmp_path), *TINY_OVERRIDES]
    args += ["optim.epochs=3", "train.eval_every=1", "train.keep_best=rank1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    last = load_checkpoint(tmp_path / "last.pt")
    best = load_checkpoint(tmp_path / "best.pt")
    ranks = {e["epoch"]: e["Rank-1"] for e in last["evaluations"]}
    winner = max(ranks, key=lambda e: (ranks[e], -e))  # the first epoch with the top Rank-1
    assert best["epoch"] == winner and last["best"]["epoch"] == winner
    assert last["best"]["value"] == ranks[winner]
    rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")]
    assert "last (epoch 3, last.pt)" in rows
    assert f"best Rank-1 on the test split (epoch {winner}, best.pt)" in rows


def test_checkpoints_get_the_usual_mode_and_stale_temporaries_go(tiny_synthetic, tmp_path):
    splits = build_dataset("synthetic", tiny_synthetic)
    stale = tmp_path / ".last.pt.abc123.tmp"
    tmp_path.mkdir(exist_ok=True)
    stale.write_bytes(b"half a checkpoint of a killed write")
    Trainer.from_config(tiny_config("optim.epochs=1"), splits, tmp_path).fit()
    assert not stale.exists()
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir() if p.is_file()}
    assert modes["last.pt"] == modes["config.yaml"] == modes["metrics.jsonl"]


class _View:
    """What KeepBest reads of the trainer, on a rank that writes nothing."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        self.best = None
        self.ctx = SimpleNamespace(is_main=False)

    def state_dict(self) -> dict:
        return {}


def test_keep_best_follows_its_target_only(tmp_path):
    from bdbnet.engine.callbacks import KeepBest

    keep, view = KeepBest(tmp_path, "mAP", {}, target="B"), _View()
    for epoch, target, value in [(1, "A", 0.9), (1, "B", 0.3), (2, "A", 0.95), (2, "B", 0.2)]:
        keep.on_evaluation(view, {"epoch": epoch, "target": target, "mAP": value}, None)
    assert (view.best["target"], view.best["epoch"], view.best["value"]) == ("B", 1, 0.3)
    # a resumed run told to follow A: B's best does not count, A's first evaluation replaces it
    follow_a = KeepBest(tmp_path, "mAP", {}, target="A")
    follow_a.on_evaluation(view, {"epoch": 3, "target": "A", "mAP": 0.1}, None)
    assert (view.best["target"], view.best["value"]) == ("A", 0.1)


def test_metrics_of_several_targets_are_separate_curves(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from bdbnet.engine.metrics_log import MetricsLogger, read_metrics

    with MetricsLogger(tmp_path, tensorboard=True) as logger:
        for target, value in (("market1501", 0.8), ("dukemtmcreid", 0.3)):
            logger.log("eval", 1, {"target": target, "mAP": value}, epoch=1, group=target)
        logger.log("eval", 2, {"mAP": 0.5}, epoch=2)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert tags == {"eval/market1501/mAP", "eval/dukemtmcreid/mAP", "eval/mAP"}
    assert [s.value for s in events.Scalars("eval/dukemtmcreid/mAP")] == [pytest.approx(0.3)]
    lines = read_metrics(tmp_path / "metrics.jsonl")
    assert [(x.get("target"), x["mAP"]) for x in lines] == [
        ("market1501", 0.8),
        ("dukemtmcreid", 0.3),
        (None, 0.5),
    ]
