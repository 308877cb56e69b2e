"""--resume continues with the run's own config.yaml (or last.pt's); changes to what was
trained are refused."""

import json

import pytest
import yaml
from conftest import TINY_OVERRIDES, tiny_config

from bdbnet.cli import main
from bdbnet.engine.resume import resume_config
from bdbnet.errors import ConfigError


def test_no_run_yet(tmp_path):
    assert resume_config(tmp_path, ["optim.lr=0.5"]) is None


def test_allowed_overrides_and_refused_ones(tmp_path):
    (tmp_path / "config.yaml").write_text(tiny_config("optim.lr=0.001").to_yaml())
    cfg = resume_config(
        tmp_path, ["optim.epochs=5", "train.amp=bf16", "eval.flip=true", "data.workers=0"]
    )
    assert (cfg.optim.epochs, cfg.train.amp, cfg.eval.flip, cfg.optim.lr) == (5, "bf16", True, 1e-3)
    assert resume_config(tmp_path, ["optim.lr=0.001"]).optim.lr == 1e-3  # same value: fine
    for override, key in [
        ("optim.lr=0.5", "optim.lr"),
        ("data.height=64", "data.height"),
        ("train.seed=3", "train.seed"),
        ("model.backbone=resnet50", "model.backbone"),
    ]:
        with pytest.raises(ConfigError, match=rf"--resume: {key}=.* would change what was trained"):
            resume_config(tmp_path, [override])
    with pytest.raises(ConfigError, match="optim.epochs can only be extended"):
        resume_config(tmp_path, ["optim.epochs=1"])


def test_the_readmes_resume_command(tiny_synthetic, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "--dataset", "synthetic", "--root", str(tiny_synthetic)]
    base += ["--preset", "synthetic-demo", "--output", str(run), *TINY_OVERRIDES]
    assert main([*base, "optim.epochs=1"]) == 0
    # bdbnet train --dataset D --root R --resume optim.epochs=N train.amp=bf16
    assert main([*base, "--resume", "optim.epochs=2", "train.amp=bf16"]) == 0
    out = capsys.readouterr().out
    assert f"resuming {run / 'last.pt'} after epoch 1" in out
    stored = yaml.safe_load((run / "config.yaml").read_text())
    assert stored["optim"]["epochs"] == 2 and stored["train"]["amp"] == "bf16"  # what ran
    steps = [
        json.loads(x)["step"]
        for x in (run / "metrics.jsonl").read_text().splitlines()
        if json.loads(x)["kind"] == "train"
    ]
    assert steps == [1, 2, 3, 4]
    # a change of what was trained is refused, naming the key, and nothing is touched
    before = (run / "last.pt").read_bytes()
    assert main([*base, "--resume", "optim.epochs=3", "optim.lr=0.5"]) == 2
    err = capsys.readouterr().err
    assert "--resume: optim.lr=0.5 would change what was trained" in err
    assert "Traceback" not in err and (run / "last.pt").read_bytes() == before


def test_resume_without_config_yaml_checks_against_last_pts_config(
    tiny_synthetic, tmp_path, capsys
):
    """A last.pt copied into a folder of its own: the config it records is the base, changes
    of what was trained are refused against it, and config.yaml is written from what trains."""
    run, copy = tmp_path / "run", tmp_path / "copy"
    base = ["train", "--dataset", "synthetic", "--root", str(tiny_synthetic)]
    base += ["--preset", "synthetic-demo", *TINY_OVERRIDES]
    assert main([*base, "--output", str(run), "optim.epochs=1", "optim.lr=0.002"]) == 0
    copy.mkdir()
    (copy / "last.pt").write_bytes((run / "last.pt").read_bytes())
    resumed = [*base, "--output", str(copy), "--resume"]
    for override, key in [("optim.lr=0.5", "optim.lr"), ("data.height=64", "data.height")]:
        assert main([*resumed, "optim.epochs=2", override]) == 2
        err = capsys.readouterr().err
        assert f"--resume: {key}=" in err and f"{copy / 'last.pt'} has" in err
        assert not (copy / "config.yaml").exists() and "Traceback" not in err
    capsys.readouterr()
    assert main([*resumed, "optim.epochs=2"]) == 0
    assert f"resuming {copy / 'last.pt'} after epoch 1" in capsys.readouterr().out
    stored = yaml.safe_load((copy / "config.yaml").read_text())
    assert stored["optim"]["epochs"] == 2 and stored["optim"]["lr"] == 0.002  # not the preset's


def test_a_fresh_run_refuses_a_folder_holding_one(tiny_synthetic, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "--dataset", "synthetic", "--root", str(tiny_synthetic)]
    base += ["--preset", "synthetic-demo", "--output", str(run), *TINY_OVERRIDES, "optim.epochs=1"]
    assert main(base) == 0
    capsys.readouterr()
    assert main(base) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_resuming_with_another_process_count_says_it_will_not_continue_exactly(
    tiny_synthetic, tmp_path
):
    """A checkpoint of a 2-process run resumed by one process: allowed, with a warning that
    names both counts (the batches and random streams are shared out differently)."""
    from bdbnet.data import build_dataset
    from bdbnet.engine.trainer import Trainer
    from bdbnet.files import atomic_save
    from bdbnet.models.loading import load_checkpoint

    splits = build_dataset("synthetic", tiny_synthetic)
    cfg = tiny_config("optim.epochs=1")
    Trainer.from_config(cfg, splits, tmp_path).fit()
    state = load_checkpoint(tmp_path / "last.pt")
    state["world_size"], state["rng_by_rank"] = 2, state["rng_by_rank"] * 2
    atomic_save(state, tmp_path / "last.pt")
    cfg.optim.epochs = 2
    with pytest.warns(UserWarning, match=r"resuming a run of 2 process\(es\) with 1: .* resume "):
        Trainer.from_config(cfg, splits, tmp_path, resume=True)
