"""Evaluation targets: ``bdbnet train --eval-dataset NAME[=ROOT]`` (``eval.targets``) evaluates
the test splits of other datasets, a row and a ``metrics.jsonl`` line each, best-model keeping
following one of them; ``bdbnet evaluate`` takes several ``--dataset`` as well."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_OVERRIDES

from bdbnet.cli import main
from bdbnet.data.synthetic import generate_synthetic_reid
from bdbnet.engine.metrics_log import read_metrics


@pytest.fixture(scope="module")
def other_network(tmp_path_factory):
    root = tmp_path_factory.mktemp("targets") / "b" / "synthetic"
    generate_synthetic_reid(root, train_ids=5, test_ids=4, seed=1, distractors=2, junk=1)
    return root


def best_epoch(run) -> int:
    return torch.load(run / "best.pt", weights_only=False)["best"]["epoch"]


def test_a_run_evaluated_on_two_targets(tiny_synthetic, other_network, tmp_path, capsys):
    a, b = f"synthetic={tiny_synthetic}", f"synthetic={other_network}"
    run = tmp_path / "run"
    args = ["train", "--dataset", a, "--eval-dataset", b, "--eval-dataset", a]
    args += ["--preset", "synthetic-demo", "--output", str(run), *TINY_OVERRIDES]
    args += ["optim.epochs=2", "train.eval_every=1", "train.keep_best=mAP"]
    assert main([*args, f"train.keep_best_target={a}"]) == 0
    out = capsys.readouterr().out
    assert f"testing on {b}, {a}" in out
    assert f"best.pt: the best mAP on the test split of {a}" in out
    table = [[c.strip() for c in line.split("|")[1:-1]] for line in out.splitlines() if "|" in line]
    assert table[0][:3] == ["model (%)", "tested on", "mAP (full)"]
    assert [row[:2] for row in table[2:]] == [
        ["last (epoch 2, last.pt)", b],
        ["last (epoch 2, last.pt)", a],
        [f"best mAP on the test split (epoch {best_epoch(run)}, best.pt)", a],
    ]

    lines = [r for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "eval"]
    assert [(r["epoch"], r["target"]) for r in lines] == [(1, b), (1, a), (2, b), (2, a)]
    state = torch.load(run / "last.pt", weights_only=False)
    assert [(e["epoch"], e["target"]) for e in state["evaluations"]] == [
        (r["epoch"], r["target"]) for r in lines
    ]
    best = torch.load(run / "best.pt", weights_only=False)["best"]
    assert best["target"] == a
    assert best["mAP"] == max(r["mAP"] for r in lines if r["target"] == a)

    # `bdbnet evaluate` with both: the same numbers, a row and a --json entry each
    report = tmp_path / "transfer.json"
    evaluate = ["evaluate", "--checkpoint", str(run / "last.pt"), "--quiet", "--amp", "none"]
    assert main([*evaluate, "--dataset", b, "--dataset", a, "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert [line.split("|")[1].strip() for line in out.splitlines() if "|" in line][2:] == [b, a]
    payload = json.loads(report.read_text())
    assert [t["dataset"] for t in payload["targets"]] == [b, a]
    trained = {r["target"]: r for r in lines if r["epoch"] == 2}
    for target in payload["targets"]:
        for key in ("mAP", "Rank-1"):
            assert target[key] == pytest.approx(trained[target["dataset"]][key], rel=1e-6)


def test_test_images_trained_on_are_named(tiny_synthetic, tmp_path, capsys):
    """combine_all trains on the test identities: a target among the sources is no benchmark."""
    syn = f"synthetic={tiny_synthetic}"
    args = ["train", "--dataset", syn, "--eval-dataset", syn, "--preset", "synthetic-demo"]
    args += ["--output", str(tmp_path / "run"), *TINY_OVERRIDES, "optim.epochs=1"]
    assert main([*args, "data.combine_all=true"]) == 0
    out = capsys.readouterr().out
    assert (
        "note: the test images of synthetic are training images here (data.combine_all): "
        "their rows are not benchmark results"
    ) in out


def test_one_dataset_keeps_its_plain_report(tiny_synthetic, tiny_checkpoint, tmp_path, capsys):
    report = tmp_path / "m.json"
    args = ["evaluate", "--checkpoint", str(tiny_checkpoint), "--dataset", "synthetic"]
    args += ["--root", str(tiny_synthetic), "--quiet", "--amp", "none", "--json", str(report)]
    assert main(args) == 0
    payload = json.loads(report.read_text())
    assert payload["dataset"] == "synthetic" and "targets" not in payload and "mAP" in payload


def test_bad_targets_are_one_line(tiny_synthetic, tiny_checkpoint, tmp_path, capsys):
    syn = f"synthetic={tiny_synthetic}"
    train = ["train", "--preset", "synthetic-demo", "--output", str(tmp_path / "run")]
    ckpt = ["evaluate", "--checkpoint", str(tiny_checkpoint)]
    cases = [
        (["train", "--root", str(tiny_synthetic)],
         "give --dataset NAME (or a --preset/--config that names the datasets)"),
        (["train", "--resume"], "--resume needs the run's --output DIR (or its --dataset)"),
        ([*train, "--dataset", syn, "--eval-dataset", "nope=/x"],
         "--eval-dataset: unknown dataset 'nope'"),
        ([*train, "--dataset", syn, "--eval-dataset", "synthetic"],
         "--eval-dataset: synthetic has no root: write synthetic=ROOT or give --root"),
        ([*train, "--dataset", syn, *TINY_OVERRIDES, "train.keep_best=mAP",
          "train.keep_best_target=market1501"],
         "train.keep_best_target='market1501' is not one of the evaluation targets (synthetic)"),
        ([*ckpt, "--dataset", syn, "--dataset", syn], f"--dataset: {syn} is given twice"),
        ([*ckpt, "--dataset", syn, "--dataset", "market1501=/x", "--save-run", str(tmp_path)],
         "--save-run, --output and --worst take one --dataset: evaluate the others apart"),
    ]  # fmt: skip
    for args, message in cases:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_the_recipe_may_name_the_datasets(tiny_synthetic, tmp_path, capsys):
    """No --dataset: the preset's datasets (here synthetic-demo's) at --root."""
    import yaml

    run = tmp_path / "run"
    args = ["train", "--preset", "synthetic-demo", "--root", str(tiny_synthetic)]
    assert main([*args, "--output", str(run), *TINY_OVERRIDES, "optim.epochs=1"]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())["data"]
    assert (saved["dataset"], saved["root"], saved["sources"]) == (
        "synthetic",
        str(tiny_synthetic),
        [],
    )
    # resumed by its folder alone
    assert main(["train", "--resume", "--output", str(run), "optim.epochs=2"]) == 0
    assert "resuming" in capsys.readouterr().out
