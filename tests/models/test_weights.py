"""safetensors weights (``bdbnet export --format safetensors``) load wherever a checkpoint does,
and a model's identity is its weights, not its file."""

from __future__ import annotations

import json

import pytest
import torch

from bdbnet.cli import main
from bdbnet.files import atomic_save
from bdbnet.inference import FeatureExtractor, GalleryIndex
from bdbnet.inference.export import export_checkpoint, read_export_metadata
from bdbnet.models import CheckpointError
from bdbnet.models.loading import load_trained_model
from bdbnet.models.weights import read_safetensors, state_dict_sha256, write_safetensors


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    export_checkpoint(tiny_checkpoint, out, "safetensors")
    return out


def test_export_holds_weights_config_and_preprocessing(tiny_checkpoint, exported):
    state = torch.load(tiny_checkpoint, weights_only=True)
    meta = read_export_metadata(exported)
    assert meta["format"] == "bdbnet-weights" and meta["model_name"] == "bdb"
    assert meta["model_kwargs"] == state["model_kwargs"] and meta["num_classes"] == 4
    assert meta["config"] == state["config"] and meta["preprocess"]["resize"] == [32, 16]
    assert meta["weights_sha256"] == state_dict_sha256(state["model"])
    weights, _ = read_safetensors(exported)
    assert weights.keys() == state["model"].keys()
    assert all(torch.equal(weights[k], state["model"][k]) for k in weights)
    assert "optimizer" not in meta and "optimizer" not in weights


def test_loads_like_the_checkpoint(tiny_checkpoint, exported, person_images):
    a, cfg_a = load_trained_model(tiny_checkpoint)
    b, cfg_b = load_trained_model(exported)
    x = torch.randn(2, 3, 32, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    assert cfg_a.to_dict() == cfg_b.to_dict()
    ea, eb = FeatureExtractor(tiny_checkpoint), FeatureExtractor(exported)
    assert torch.equal(ea(person_images[:2]), eb(person_images[:2]))
    assert ea.identity.mismatch(eb.identity) is None  # the same weights: the same model


def test_a_resaved_identical_model_is_accepted_by_an_index(
    tiny_checkpoint, tmp_path, person_images
):
    state = torch.load(tiny_checkpoint, weights_only=True)
    resaved = atomic_save({**state, "epoch": 99}, tmp_path / "resaved.pt")  # other bytes
    original = FeatureExtractor(tiny_checkpoint)
    index = GalleryIndex.from_extraction(original.extract(person_images), original.identity)
    again = FeatureExtractor(resaved)
    assert again.identity.sha256 != original.identity.sha256  # the files differ
    index.search(again(person_images[:1]), 2, identity=again.identity)  # not refused
    changed = {**state, "model": dict(state["model"])}
    key = next(k for k in changed["model"] if k.endswith("global_reduction.0.weight"))
    changed["model"][key] = changed["model"][key] + 1e-3
    other = FeatureExtractor(atomic_save(changed, tmp_path / "other.pt"))
    assert "different model" in index.identity.mismatch(other.identity)


def test_damaged_or_foreign_safetensors_are_refused(tmp_path):
    write_safetensors(tmp_path / "w.safetensors", {"w": torch.ones(3)}, {"config": {}})
    blob = bytearray((tmp_path / "w.safetensors").read_bytes())
    blob[-1] ^= 0xFF  # a weight byte
    (tmp_path / "bad.safetensors").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="do not match their recorded sha256"):
        read_safetensors(tmp_path / "bad.safetensors")
    import safetensors.torch

    safetensors.torch.save_file({"w": torch.ones(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="without bdbnet metadata"):
        load_trained_model(tmp_path / "plain.safetensors")


def test_cli_export_then_extract_and_evaluate_with_it(
    tiny_checkpoint, tiny_synthetic, person_images, tmp_path, capsys
):
    out = tmp_path / "bdb.safetensors"
    assert main(["export", "--checkpoint", str(tiny_checkpoint), "--format", "safetensors",
                 "--output", str(out)]) == 0  # fmt: skip
    line = capsys.readouterr().out
    assert line.startswith(f"wrote {out} (safetensors: ") and "weights sha256" in line
    index = tmp_path / "g.npz"
    assert main(["extract", "--checkpoint", str(out), *person_images, "--output", str(index),
                 "--quiet", "--device", "cpu"]) == 0  # fmt: skip
    assert main(["evaluate", "--checkpoint", str(out), "--dataset", "synthetic", "--root",
                 str(tiny_synthetic), "--device", "cpu", "--workers", "0", "--json",
                 str(tmp_path / "m.json")]) == 0  # fmt: skip
    assert json.loads((tmp_path / "m.json").read_text())["checkpoint"] == str(out)
