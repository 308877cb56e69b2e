import json
import sys

import pytest
from PIL import Image

from bdbnet.visualization.curves import plot_cmc, plot_training_curve

pytest.importorskip("matplotlib")

TAB_BLUE, TAB_ORANGE = (31, 119, 180), (255, 127, 14)
# figsize (10, 3.8) inches at 110 dpi
PNG_SIZE = (1100, 418)


def write_metrics(path, with_evals=True, truncated=False):
    lines = [
        {
            "kind": "epoch",
            "step": 10,
            "time": 1.0,
            "epoch": 1,
            "total": 3.0,
            "loss/triplet": 1.0,
            "loss/softmax": 2.0,
        },
        {
            "kind": "epoch",
            "step": 20,
            "time": 2.0,
            "epoch": 2,
            "total": 2.0,
            "loss/triplet": 0.8,
            "loss/softmax": 1.2,
        },
        {
            "kind": "epoch",
            "step": 30,
            "time": 3.0,
            "epoch": 3,
            "total": 1.5,
            "loss/triplet": 0.6,
            "loss/softmax": 0.9,
        },
    ]
    if with_evals:
        lines += [
            {"kind": "eval", "step": 20, "time": 2.5, "epoch": 2, "Rank-1": 0.4, "mAP": 0.2},
            {"kind": "eval", "step": 30, "time": 3.5, "epoch": 3, "Rank-1": 0.7, "mAP": 0.5},
        ]
    text = "".join(json.dumps(r) + "\n" for r in lines)
    if truncated:
        text += '{"kind": "epoch", "step": 40, "tot'
    path.write_text(text)
    return path


def right_half_colours(png):
    with Image.open(png) as img:
        rgb = img.convert("RGB")
        w, h = rgb.size
        return {c for _, c in rgb.crop((w // 2, 0, w, h)).getcolors(maxcolors=w * h)}


def test_plot_from_metrics_file_writes_png(tmp_path):
    metrics = write_metrics(tmp_path / "metrics.jsonl")
    out = plot_training_curve(metrics, tmp_path / "plots" / "curve.png")
    assert out == tmp_path / "plots" / "curve.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as img:
        assert img.size == PNG_SIZE
    colours = right_half_colours(out)
    assert TAB_BLUE in colours  # Rank-1 curve
    assert TAB_ORANGE in colours  # mAP curve


def test_plot_without_evaluations_has_empty_accuracy_panel(tmp_path):
    metrics = write_metrics(tmp_path / "metrics.jsonl", with_evals=False)
    with pytest.warns(UserWarning, match="No artists with labels"):
        out = plot_training_curve(metrics, tmp_path / "curve.png")
    colours = right_half_colours(out)
    assert TAB_BLUE not in colours
    assert TAB_ORANGE not in colours


def test_plot_with_baseline_and_truncated_last_line(tmp_path):
    metrics = write_metrics(tmp_path / "metrics.jsonl", with_evals=False, truncated=True)
    out = plot_training_curve(
        metrics, tmp_path / "curve.png", baseline={"Rank-1": 0.1, "mAP": 0.05}
    )
    with Image.open(out) as img:
        assert img.size == PNG_SIZE
    colours = right_half_colours(out)
    assert TAB_BLUE in colours and TAB_ORANGE in colours  # the baseline lines


def test_missing_matplotlib_gives_install_hint(tmp_path, monkeypatch):
    metrics = write_metrics(tmp_path / "metrics.jsonl")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"bdbnet\[viz\]"):
        plot_training_curve(metrics, tmp_path / "curve.png")
    assert not (tmp_path / "curve.png").exists()


def test_plot_cmc_writes_a_picture_with_each_curve(tmp_path):
    cmc = [0.5 + 0.01 * k for k in range(50)]
    out = plot_cmc({"ours": cmc, "baseline": [v / 2 for v in cmc]}, tmp_path / "p" / "cmc.png")
    assert out.stat().st_size > 1000
    with Image.open(out) as img:
        assert img.size == (550, 418)  # figsize (5, 3.8) at 110 dpi
        rgb = img.convert("RGB")
        colours = {c for _, c in rgb.getcolors(maxcolors=rgb.size[0] * rgb.size[1])}
    assert TAB_BLUE in colours and TAB_ORANGE in colours
    single = plot_cmc(cmc, tmp_path / "single.png", max_rank=20)
    assert single.stat().st_size > 1000
