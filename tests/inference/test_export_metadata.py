"""Export metadata always describes the graph; sizes are validated as in training."""

from __future__ import annotations

import pytest
import torch

from bdbnet.cli import main
from bdbnet.errors import ConfigError
from bdbnet.inference.export import export_checkpoint, read_export_metadata


def test_export_size_not_divisible_by_16_is_refused_before_writing(tiny_checkpoint, tmp_path):
    out = tmp_path / "bdb.pt"
    with pytest.raises(ConfigError, match="250x128 must be multiples of 16"):
        export_checkpoint(tiny_checkpoint, out, "torchscript", (250, 128))
    argv = ["export", "--checkpoint", str(tiny_checkpoint), "--format", "torchscript",
            "--output", str(out), "--height", "250", "--width", "128"]  # fmt: skip
    assert main(argv) == 2
    assert not out.exists()


def test_metadata_resize_is_the_graph_input_size(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "bdb.pt"
    argv = ["export", "--checkpoint", str(tiny_checkpoint), "--format", "torchscript",
            "--output", str(out), "--height", "64", "--width", "32"]  # fmt: skip
    assert main(argv) == 0  # the checkpoint's recipe is 32x16: the graph is not
    meta = read_export_metadata(out)
    assert meta["input"]["shape"][2:] == [64, 32]
    assert meta["preprocess"]["resize"] == [64, 32]
    graph = torch.jit.load(str(out))
    assert graph(torch.zeros(1, 3, 64, 32)).shape == (1, meta["output"]["shape"][1])
    default = export_checkpoint(tiny_checkpoint, tmp_path / "d.pt", "torchscript")
    meta = read_export_metadata(default)
    assert meta["preprocess"]["resize"] == meta["input"]["shape"][2:] == [32, 16]
