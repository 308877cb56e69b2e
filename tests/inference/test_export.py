import pytest
import torch
from conftest import write_tiny_checkpoint

from bdbnet.inference.export import export_checkpoint, read_export_metadata
from bdbnet.models.loading import load_trained_model

pytestmark = pytest.mark.slow  # ONNX and TorchScript export of a ResNet-50


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    # default BatchNorm statistics, embeddings scaled to a few units (see calibrated_bdbnet)
    return write_tiny_checkpoint(tmp_path_factory.mktemp("export") / "m.pt", 1, calibrate=False)


def random_inputs(batch, seed):
    return torch.randn(batch, 3, 32, 16, generator=torch.Generator().manual_seed(seed))


def check_metadata(meta):
    assert meta["preprocess"]["resize"] == [32, 16]
    assert meta["preprocess"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert meta["input"]["shape"] == ["batch", 3, 32, 16]
    assert meta["output"]["shape"] == ["batch", 1536]
    assert len(meta["checkpoint_sha256"]) == 64


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.load is deprecated
def test_torchscript_export_matches_pytorch(checkpoint, tmp_path):
    model, _ = load_trained_model(checkpoint)
    path = export_checkpoint(checkpoint, tmp_path / "bdb.pt", "torchscript")
    check_metadata(read_export_metadata(path))
    scripted = torch.jit.load(str(path))
    for batch in (1, 5):  # traced with batch 2: the batch axis is dynamic
        x = random_inputs(batch, batch)
        # plain execution: the profiling executor's optimisation passes only cost test time
        with torch.no_grad(), torch.jit.optimized_execution(False):
            diff = (scripted(x) - model(x)).abs().max().item()
        assert diff <= 1e-4, (batch, diff)


def test_onnx_export_matches_pytorch(checkpoint, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model, _ = load_trained_model(checkpoint)
    path = export_checkpoint(checkpoint, tmp_path / "bdb.onnx", "onnx")
    check_metadata(read_export_metadata(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert session.get_modelmeta().custom_metadata_map["preprocess"]
    for batch in (1, 3):
        x = random_inputs(batch, 10 + batch)
        (out,) = session.run(None, {"images": x.numpy()})
        with torch.no_grad():
            ref = model(x)
            diff = (torch.from_numpy(out) - ref).abs().max().item()
        assert 1.0 < ref.abs().max() < 20.0  # features of a realistic scale
        assert out.shape == (batch, 1536)
        assert diff <= 1e-4, (batch, diff)


def test_export_rejects_unknown_format(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="format"):
        export_checkpoint(checkpoint, tmp_path / "x.bin", "tflite")
