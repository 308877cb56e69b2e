"""``bdbnet synth``: writing a dataset, the ``--domain`` choice and its refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bdbnet.cli import main
from bdbnet.data.synthetic import DOMAINS


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_synth_writes_the_requested_domain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "d1"
    argv = ["synth", "--root", str(root), "--train-ids", "2", "--test-ids", "2", "--domain", "1"]
    code, out, _ = run(argv, capsys)
    assert code == 0
    assert out.startswith(f"synthetic re-ID dataset (domain 1) at {root}: ")
    assert out.rstrip().splitlines()[-1] == f"domain 1: {DOMAINS[1].description}"
    meta = json.loads((root / "synthetic_meta.json").read_text())
    assert meta["params"]["domain"] == 1 and meta["params"]["train_ids"] == 2
    assert meta["domain"]["description"] == DOMAINS[1].description


def test_synth_defaults_to_domain_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "d0"
    code, out, _ = run(
        ["synth", "--root", str(root), "--train-ids", "2", "--test-ids", "2"], capsys
    )
    assert code == 0
    assert out.rstrip().splitlines()[-1] == f"domain 0: {DOMAINS[0].description}"
    assert json.loads((root / "synthetic_meta.json").read_text())["params"]["domain"] == 0


def test_unknown_domain_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "d9"
    code, out, err = run(["synth", "--root", str(root), "--domain", "9"], capsys)
    assert code == 2 and out == ""
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert line.startswith("bdbnet synth: error: argument --domain: invalid choice: 9")
    assert "0, 1, 2" in line
    assert not root.exists()


def test_help_lists_the_domains(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for n, domain in DOMAINS.items():
        assert f"{n}: {domain.description}" in text
    assert "bdbnet synth --root data/synthetic-d1 --domain 1" in text
