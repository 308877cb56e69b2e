import os

import pytest
import torch

from bdbnet.files import atomic_save
from bdbnet.models import BDBNet, CheckpointError, to_official_state_dict
from bdbnet.models.loading import FORMAT, load_checkpoint, load_trained_model


def test_atomic_save_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "last.pt"
    atomic_save({"format": FORMAT, "version": 1, "x": torch.ones(2)}, path)
    atomic_save({"format": FORMAT, "version": 1, "x": torch.zeros(2)}, path)
    assert torch.equal(load_checkpoint(path)["x"], torch.zeros(2))
    assert os.listdir(path.parent) == ["last.pt"]


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_save({"format": FORMAT, "version": 1, "epoch": 1}, path)

    def crash(obj, f):
        f.write(b"partial")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"format": FORMAT, "version": 1, "epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["last.pt"]


def test_format_checks(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(1)}, other)
    with pytest.raises(CheckpointError, match="not a bdbnet checkpoint"):
        load_checkpoint(other)
    official = tmp_path / "official.pth.tar"
    torch.save({"state_dict": {}, "epoch": 3}, official)
    with pytest.raises(CheckpointError, match="load_official_checkpoint"):
        load_checkpoint(official)
    future = tmp_path / "future.pt"
    torch.save({"format": FORMAT, "version": 99}, future)
    with pytest.raises(CheckpointError, match="upgrade bdbnet"):
        load_checkpoint(future)


def test_load_trained_model_accepts_official_files(tmp_path):
    torch.manual_seed(0)
    model = BDBNet(12, pretrained=None).eval()
    path = tmp_path / "duke.pth.tar"
    torch.save({"state_dict": to_official_state_dict(model), "epoch": 10}, path)
    loaded, cfg = load_trained_model(path)
    assert (cfg.data.height, cfg.data.width) == (384, 128)
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
