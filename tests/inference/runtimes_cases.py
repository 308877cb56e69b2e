"""Inference runtimes behind FeatureExtractor: an exported model runs in the real ONNX Runtime and
OpenVINO with the preprocessing read from the file, gives PyTorch's features at every batch size,
and bad model files are one-line errors naming them.

Run in an interpreter of their own by ``test_runtimes.py`` (see there why); on their own:
``python -m pytest tests/inference/runtimes_cases.py``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import write_tiny_checkpoint
from PIL import Image

from bdbnet.cli import main
from bdbnet.errors import CheckpointError, CheckpointNotFoundError, ConfigError
from bdbnet.inference import FeatureExtractor
from bdbnet.inference.export import export_checkpoint, read_export_metadata
from bdbnet.inference.runtimes import open_runtime, runtime_for

pytestmark = pytest.mark.slow  # ONNX and OpenVINO exports of a ResNet-50, NNCF quantisation

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
openvino = pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny checkpoint (ResNet-50, 32x16 inputs) and its exports; calibration: 8 images."""
    folder = tmp_path_factory.mktemp("runtimes")
    checkpoint = write_tiny_checkpoint(folder / "m.pt", 1, calibrate=False)
    calibration = folder / "calibration"
    calibration.mkdir()
    rng = np.random.default_rng(1)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (40, 20, 3), dtype=np.uint8)).save(
            calibration / f"{i}.png"
        )
    paths = sorted(str(p) for p in calibration.iterdir())
    out = {"pt": checkpoint, "calibration": calibration}
    out["onnx"] = export_checkpoint(checkpoint, folder / "m.onnx", "onnx")
    out["xml"] = export_checkpoint(checkpoint, folder / "m.xml", "openvino")
    out["fp16"] = export_checkpoint(checkpoint, folder / "m16.xml", "openvino", precision="fp16")
    out["int8"] = export_checkpoint(
        checkpoint, folder / "m8.xml", "openvino", precision="int8", calibration=paths
    )
    return out


def images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40 + i % 9, 20 + i % 5, 3), dtype=np.uint8) for i in range(n)]


def test_auto_picks_the_runtime_from_the_file(models):
    assert [runtime_for(models[k]) for k in ("pt", "onnx", "xml")] == [
        "torch",
        "onnxruntime",
        "openvino",
    ]
    for key, (runtime, precision) in {
        "pt": ("torch", "fp32"),
        "onnx": ("onnxruntime", "fp32"),
        "xml": ("openvino", "fp32"),
        "fp16": ("openvino", "fp16"),
        "int8": ("openvino", "int8"),
    }.items():
        info = FeatureExtractor(models[key], device="cpu", amp="none").runtime.info
        assert (info.runtime, info.precision) == (runtime, precision), key


@pytest.mark.parametrize("key", ["onnx", "xml"])
def test_fp32_artifacts_give_the_checkpoints_features_at_every_batch_size(models, key):
    """A dynamic batch axis that is wrong at other batch sizes is a known failure of exports."""
    inputs = images(64)
    reference = FeatureExtractor(models["pt"], device="cpu", amp="none", channels_last=False)
    expected = reference(inputs)
    artifact = FeatureExtractor(models[key], device="cpu", amp="none")
    assert artifact.preprocess == reference.preprocess  # read from the file
    for batch in (1, 8, 64):
        artifact.batch_size = batch
        got = artifact(inputs)
        cosine = torch.nn.functional.cosine_similarity(got, expected)
        assert got.shape == expected.shape and float(cosine.min()) >= 0.99999, (key, batch)


def test_fp16_and_int8_artifacts_run_and_int8_is_another_identity(models):
    inputs = images(8)
    expected = FeatureExtractor(models["pt"], device="cpu", amp="none")(inputs)
    fp16 = FeatureExtractor(models["fp16"], device="cpu", amp="none")
    cosine = torch.nn.functional.cosine_similarity(fp16(inputs), expected)
    assert float(cosine.min()) >= 0.99  # fp16 weights, fp32 arithmetic
    int8 = FeatureExtractor(models["int8"], device="cpu", amp="none")
    features = int8(inputs)
    assert features.shape == expected.shape and torch.isfinite(features).all()
    # An fp32 export is the same model as its checkpoint (an index built with one accepts the
    # other); INT8 features are not the checkpoint's, so its identity differs.
    fp32_identity = FeatureExtractor(models["onnx"], device="cpu").identity
    torch_identity = FeatureExtractor(models["pt"], device="cpu").identity
    assert fp32_identity.mismatch(torch_identity) is None
    assert "different model" in (int8.identity.mismatch(torch_identity) or "")
    meta = read_export_metadata(models["int8"])
    assert meta["precision"] == "int8" and meta["config"]["model"]["backbone"] == "resnet50"


def test_get_features_crops_the_boxes_of_a_bgr_frame(models):
    extractor = FeatureExtractor(models["onnx"], device="cpu")
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    boxes = np.array([[10.0, 5.0, 40.0, 80.0], [-20.0, 60.0, 30.5, 200.0]])
    features = extractor.get_features(boxes, rgb[..., ::-1].copy(), bgr=True)
    expected = extractor([rgb[5:80, 10:40], rgb[60:120, 0:31]])
    torch.testing.assert_close(features, expected)
    assert extractor.get_features(np.zeros((0, 4)), rgb).shape == (0, extractor.feature_dim)
    with pytest.raises(ValueError, match=r"box 0 \(100, 5, 120, 80\) has no area inside"):
        extractor.get_features([[100, 5, 120, 80]], rgb)
    with pytest.raises(ValueError, match="frame must be an H x W x 3 uint8 image"):
        extractor.get_features(boxes, rgb.astype(np.float32))


def test_the_runtime_must_be_able_to_run_the_file(models):
    with pytest.raises(
        ConfigError, match=r"runtime 'onnxruntime' cannot run .*m.xml \(an OpenVINO IR\)"
    ):
        open_runtime(models["xml"], "onnxruntime", "cpu")
    with pytest.raises(ConfigError, match="runtime must be one of auto, torch"):
        open_runtime(models["onnx"], "tensorrt", "cpu")
    with pytest.raises(CheckpointNotFoundError, match="checkpoint not found: "):
        open_runtime(models["onnx"].with_name("missing.onnx"), "auto", "cpu")


def test_bad_model_files_are_one_line_errors_naming_them(models, tmp_path):
    xml = tmp_path / "alone.xml"
    xml.write_bytes(models["xml"].read_bytes())  # without its .bin
    with pytest.raises(CheckpointError, match=r"alone.xml: its weights file alone.bin is missing"):
        FeatureExtractor(xml, device="cpu")
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(models["onnx"].read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="cut.onnx: not a readable ONNX model"):
        FeatureExtractor(truncated, device="cpu")


def test_the_export_command_refuses_what_it_cannot_write(models, tmp_path, capsys):
    base = ["export", "--checkpoint", str(models["pt"])]
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        "int8 onnx": (
            ["--format", "onnx", "--precision", "int8", "--output", str(tmp_path / "a.onnx")],
            "--precision int8 is written as an OpenVINO IR: use --format openvino",
        ),
        "no calibration": (
            ["--format", "openvino", "--precision", "int8", "--output", str(tmp_path / "a.xml")],
            "--precision int8 needs --calibration DIR",
        ),
        "empty calibration": (
            ["--format", "openvino", "--precision", "int8", "--calibration", str(empty)]
            + ["--output", str(tmp_path / "a.xml")],
            f"no images in the calibration folder {empty}",
        ),
    }
    for name, (args, message) in cases.items():
        assert main([*base, *args]) == 2, name
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # nothing written


def test_evaluate_an_exported_model_with_its_checkpoints_protocol(models, tiny_synthetic):
    """``bdbnet evaluate`` as users run it, one model per process (the PyTorch checkpoint's
    images through forked DataLoader workers, the exported graphs' through threads)."""

    def rank1(model: str) -> str:
        args = ["evaluate", "--checkpoint", str(model), "--dataset", "synthetic", "--quiet"]
        args += ["--root", str(tiny_synthetic), "--amp", "none", "--workers", "2"]
        done = subprocess.run(
            [sys.executable, "-m", "bdbnet", *args], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.splitlines()[2]  # the data row of the table

    assert rank1(models["onnx"]) == rank1(models["pt"]) == rank1(models["xml"])


def test_activation_maps_need_the_pytorch_checkpoint(models, tmp_path, capsys):
    image = tmp_path / "person.png"
    Image.fromarray(images(1)[0]).save(image)
    args = ["visualize", "--checkpoint", str(models["onnx"]), str(image)]
    assert main([*args, "--output", str(tmp_path / "maps")]) == 2
    err = capsys.readouterr().err
    assert "is an exported onnxruntime graph; pass the PyTorch checkpoint" in err
    assert "Traceback" not in err


def test_export_for_boxmot_writes_its_sidecar_and_component_config(models, tmp_path, capsys):
    """What boxmot 25 reads to load the export with no option written by hand (checked against
    boxmot itself outside the suite: its features of a frame's boxes matched get_features)."""
    import json

    import yaml

    from bdbnet.files import file_sha256

    output = tmp_path / "bdb.onnx"
    args = ["export", "--checkpoint", str(models["pt"]), "--format", "onnx", "--for", "boxmot"]
    assert main([*args, "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    config = yaml.safe_load((tmp_path / "bdb.boxmot.yaml").read_text())
    assert config == {
        "backend": "onnx",
        "artifact": {"path": "bdb.onnx", "sha256": file_sha256(output)},
        "device": "cpu",
        "precision": "fp32",
        "preprocessing": "resize",
        "options": {"embedding_dim": 1536, "image_size": [32, 16]},
    }
    sidecar = json.loads((tmp_path / "bdb.onnx.metadata.json").read_text())
    assert sidecar["schema_version"] == 1 and sidecar["model_kwargs"] == {"img_size": [32, 16]}
    assert sidecar["preprocess"] == "resize" and sidecar["bdbnet"]["output"]["shape"][-1] == 1536
    assert f"wrote {tmp_path / 'bdb.boxmot.yaml'}" in printed
    assert main([*args[:-2], "--format", "torchscript", "--for", "boxmot", "--output", "x.pt"]) == 2
    assert "--for boxmot needs --format onnx or --format openvino" in capsys.readouterr().err


def test_int8_calibrates_on_a_datasets_train_split(models, tiny_synthetic, tmp_path, capsys):
    output = tmp_path / "m8.xml"
    args = ["export", "--checkpoint", str(models["pt"]), "--format", "openvino"]
    args += ["--precision", "int8", "--calibration", f"synthetic={tiny_synthetic}"]
    assert main([*args, "--output", str(output)]) == 0
    assert "(openvino int8)" in capsys.readouterr().out
    assert read_export_metadata(output)["precision"] == "int8"
    bad = [
        "--calibration",
        f"synthetic={tmp_path / 'missing'}",
        "--output",
        str(tmp_path / "x.xml"),
    ]
    assert main([*args[:-2], *bad]) == 2
    assert "Traceback" not in capsys.readouterr().err and not (tmp_path / "x.xml").exists()


def test_export_takes_pytorch_weights_not_an_exported_graph(models, tmp_path, capsys):
    args = ["export", "--checkpoint", str(models["onnx"]), "--format", "onnx"]
    assert main([*args, "--output", str(tmp_path / "again.onnx")]) == 2
    err = capsys.readouterr().err
    assert "m.onnx is already an exported graph: export takes PyTorch weights" in err
    assert not (tmp_path / "again.onnx").exists()


def test_openvino_export_cleans_killed_exports_and_follows_the_umask(models, tmp_path):
    import os
    import socket
    import stat

    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    killed = tmp_path / f".m.xml.{int(ended.stdout)}@{socket.gethostname()}.abc.tmp"
    killed.mkdir()  # the temporary folder of an export killed mid-write, with half its files
    (killed / "model.bin").write_bytes(b"half")
    mask = os.umask(0o002)
    try:
        export_checkpoint(models["pt"], tmp_path / "m.xml", "openvino")
    finally:
        os.umask(mask)
    assert sorted(os.listdir(tmp_path)) == ["m.bin", "m.xml"]
    modes = {stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("m.bin", "m.xml")}
    assert modes == {0o664}
    assert FeatureExtractor(tmp_path / "m.xml", device="cpu").feature_dim == 1536
