"""A full disk while a command writes its result: one line naming the file, exit 2, nothing
half-written left behind, and the previous file (if any) kept. The disk is filled by a patched
fsync, which every bdbnet writer calls before it renames its temporary file into place."""

from __future__ import annotations

import os

import pytest
from conftest import TINY_OVERRIDES

from bdbnet.cli import main

MODEL = ["--device", "cpu", "--amp", "none", "--quiet"]


@pytest.fixture
def full_disk(monkeypatch):
    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("bdbnet.files.os.fsync", no_space)


def check(code: int, capsys, target) -> None:
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"cannot write {target} (No space left on device)" in err, err
    assert "Traceback" not in err
    leftovers = [p for p in os.listdir(target.parent) if p.endswith(".tmp")]
    assert not leftovers and not target.exists()


EXPORTS = {"onnx": ("onnx", ".onnx"), "torchscript": ("torch", ".pt")}
EXPORTS["safetensors"] = ("safetensors", ".safetensors")


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_export(fmt, tiny_checkpoint, tmp_path, full_disk, capsys):
    package, suffix = EXPORTS[fmt]
    pytest.importorskip(package)
    target = tmp_path / f"m{suffix}"
    args = ["export", "--checkpoint", str(tiny_checkpoint), "--format", fmt]
    check(main([*args, "--output", str(target)]), capsys, target)


def test_evaluate_json(tiny_checkpoint, tiny_synthetic, tmp_path, full_disk, capsys):
    target = tmp_path / "metrics.json"
    args = ["evaluate", "--checkpoint", str(tiny_checkpoint), "--dataset", "synthetic"]
    args += ["--root", str(tiny_synthetic), "--json", str(target), *MODEL]
    check(main(args), capsys, target)


def test_search_picture(tiny_checkpoint, person_images, tmp_path, full_disk, capsys):
    target = tmp_path / "ranked.png"
    args = ["search", "--checkpoint", str(tiny_checkpoint), "--gallery", *person_images]
    args += ["--query", person_images[0], "--output", str(target), *MODEL]
    check(main(args), capsys, target)


def test_train_config_file(tiny_synthetic, tmp_path, full_disk, capsys):
    run = tmp_path / "run"
    args = ["train", "--dataset", "synthetic", "--root", str(tiny_synthetic)]
    args += ["--preset", "synthetic-demo", "--output", str(run), *TINY_OVERRIDES]
    check(main(args), capsys, run / "config.yaml")
