"""``bdbnet config``: the resolved configuration as YAML, a valid --config file."""

from __future__ import annotations

import yaml

from bdbnet.cli import main
from bdbnet.config import load_config


def test_config_prints_the_resolved_preset_with_overrides(capsys, tmp_path):
    assert main(["config", "--preset", "market1501", "optim.epochs=7", "train.amp=bf16"]) == 0
    out = capsys.readouterr().out
    data = yaml.safe_load(out)
    assert data["optim"]["epochs"] == 7 and data["train"]["amp"] == "bf16"
    assert data["data"]["height"] == 384 and data["data"]["width"] == 128
    (tmp_path / "c.yaml").write_text(out)
    again = load_config(None, tmp_path / "c.yaml")
    assert (
        again.to_dict()
        == load_config("market1501", None, ["optim.epochs=7", "train.amp=bf16"]).to_dict()
    )


def test_config_refuses_a_bad_override(capsys):
    assert main(["config", "train.no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err
