"""``bdbnet train --dataset A=ROOT --dataset B=ROOT``: one run over both sources, the list kept
in the run's config (a resume trains on the same sources), and one-line refusals."""

from __future__ import annotations

import yaml
from conftest import TINY_OVERRIDES

from bdbnet.cli import main
from bdbnet.data.synthetic import generate_synthetic_reid


def test_two_sources_train_one_run_and_resume_keeps_them(tiny_synthetic, tmp_path, capsys):
    other = tmp_path / "b" / "synthetic"
    generate_synthetic_reid(other, train_ids=5, test_ids=4, seed=1, distractors=2, junk=1)
    run = tmp_path / "run"
    sources = ["--dataset", f"synthetic={tiny_synthetic}", "--dataset", f"synthetic={other}"]
    args = ["train", *sources, "--preset", "synthetic-demo", "--output", str(run)]
    assert main([*args, *TINY_OVERRIDES, "optim.epochs=1"]) == 0
    out = capsys.readouterr().out
    assert (
        "training on synthetic+synthetic: " in out and "13 identities; testing on synthetic" in out
    )
    saved = yaml.safe_load((run / "config.yaml").read_text())["data"]
    assert saved["sources"] == [f"synthetic={tiny_synthetic}", f"synthetic={other}"]
    assert main([*args, "--resume", *TINY_OVERRIDES, "optim.epochs=2"]) == 0
    out = capsys.readouterr().out
    assert "13 identities" in out and "resuming" in out


def test_bad_sources_are_one_line_before_anything_is_loaded(tiny_synthetic, tmp_path, capsys):
    base = ["train", "--preset", "synthetic-demo", "--output", str(tmp_path / "run")]
    cases = [
        (["--dataset", "synthetic"],
         "give the dataset's folder: --root DIR or --dataset synthetic=DIR"),
        (["--dataset", f"synthetic={tiny_synthetic}", "--dataset", f"synthetic={tiny_synthetic}"],
         f"--dataset: synthetic={tiny_synthetic} is given twice"),
        (["--dataset", f"synthetic={tiny_synthetic}", "--dataset", "nope=/x"],
         "--dataset: unknown dataset 'nope'"),
    ]  # fmt: skip
    for extra, message in cases:
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
