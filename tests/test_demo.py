import json

import pytest
from conftest import TINY_OVERRIDES
from PIL import Image

from bdbnet import demo
from bdbnet.config import load_config
from bdbnet.demo import VARIANTS, demo_note, prepare_data, run_ablation, run_demo

pytestmark = pytest.mark.slow  # the demo end to end

TINY_DATA = dict(train_ids=8, test_ids=6, seed=0, distractors=6, junk=3)
# The run's own arguments (device, epochs, progress) come from run_demo / run_ablation.
SHRINK = [
    o
    for o in TINY_OVERRIDES
    if not o.startswith(("train.device", "train.progress", "optim.epochs"))
]


def test_demo_prints_the_table_and_writes_results_and_pictures(tmp_path, capsys):
    result = run_demo(
        tmp_path, epochs=1, device="cpu", progress=False, data=TINY_DATA, overrides=SHRINK
    )
    out = capsys.readouterr().out
    assert "| BDB, untrained (same network, initial weights) |" in out
    assert "| BDB, trained 1 epoch " in out
    assert "| mAP (full)" in out  # the table names the AP definition
    # The printed recipe is the one that ran, not a fixed text.
    assert "resnet18 backbone, 32x16 input (2x1 map, drop 0.3 x 1.0)" in out
    assert "1 epoch instead of 400, fp32 (train.amp=none)" in out

    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["epochs"] == 1 and saved["device"] == "cpu"
    assert saved["trained"] == result.trained and saved["untrained"] == result.untrained
    assert set(result.trained) >= {"Rank-1", "mAP", "mINP"}
    assert result.trained["ap_mode"] == "full"  # the AP definition behind mAP is named
    assert all(0.0 <= v <= 1.0 for k, v in result.trained.items() if k != "ap_mode")
    # The trained row is the trainer's own final evaluation (logged once, not recomputed).
    evals = [
        json.loads(line)
        for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["kind"] == "eval"
    ]
    assert len(evals) == 1 and evals[0]["Rank-1"] == result.trained["Rank-1"]
    assert (tmp_path / "run" / "last.pt").is_file()
    for name in ("training_curve.png", "ranked_list.png"):
        with Image.open(tmp_path / name) as img:
            assert img.width > 200 and img.height > 100


def test_prepare_data_reuses_an_identical_dataset_and_regenerates_otherwise(tmp_path, monkeypatch):
    first = prepare_data(tmp_path, **TINY_DATA)
    calls = []
    real = demo.generate_synthetic_reid
    monkeypatch.setattr(
        demo, "generate_synthetic_reid", lambda *a, **k: calls.append(k) or real(*a, **k)
    )
    again = prepare_data(tmp_path, **TINY_DATA)
    assert calls == [] and [r.path for r in again.gallery] == [r.path for r in first.gallery]
    other = prepare_data(tmp_path, **{**TINY_DATA, "seed": 1})
    assert len(calls) == 1 and calls[0]["seed"] == 1 and calls[0]["overwrite"] is True
    assert calls[0]["progress"] is True
    prepare_data(tmp_path, progress=False, **TINY_DATA)  # --quiet: no progress bar
    assert len(calls) == 2 and calls[1]["progress"] is False
    assert len(other.query) > 0


@pytest.mark.parametrize(("amp", "words"), [("none", "fp32"), ("bf16", "bf16 autocast")])
def test_demo_note_states_backbone_size_and_precision(amp, words):
    import torch

    cfg = load_config("synthetic-demo", overrides=[f"train.amp={amp}", "optim.epochs=3"])
    note = demo_note(cfg, torch.device("cpu"))
    assert "resnet18 backbone, 128x64 input (8x4 map, drop 0.3 x 1.0)" in note
    assert f"3 epochs instead of 400, {words} (train.amp={amp})" in note


def test_ablation_reports_every_variant_and_seed(tmp_path, capsys):
    variants = tuple(list(VARIANTS)[:2])
    results = run_ablation(
        tmp_path,
        seeds=(0, 1),
        variants=variants,
        epochs=1,
        device="cpu",
        progress=False,
        data=TINY_DATA,
        overrides=SHRINK,
    )
    assert set(results) == set(variants)
    for metrics in results.values():
        assert all(len(values) == 2 for values in metrics.values())
        assert all(0.0 <= v <= 1.0 for values in metrics.values() for v in values)
    saved = json.loads((tmp_path / "ablation.json").read_text())
    assert saved == {"seeds": [0, 1], "ap_mode": "full", "results": results}
    table = (tmp_path / "ablation.md").read_text()
    assert "2 seeds (%), mean ± sd" in table and all(v in table for v in variants)
    assert "global branch only (baseline), seed 1:" in capsys.readouterr().out
