import shutil

import numpy as np
import pytest
import torch
from conftest import assert_rows_close, calibrated_bdbnet, needs_native_bf16
from PIL import Image

import bdbnet
from bdbnet.data.image_dataset import UnreadableImageError
from bdbnet.data.transforms import build_test_transform
from bdbnet.inference import FeatureExtractor, list_images
from bdbnet.models import to_official_state_dict
from bdbnet.models.loading import load_trained_model


@pytest.fixture(scope="module")
def extractor(tiny_checkpoint):
    return FeatureExtractor(tiny_checkpoint, device="cpu", batch_size=3)


def test_package_exports_feature_extractor_lazily():
    assert bdbnet.FeatureExtractor is FeatureExtractor
    with pytest.raises(AttributeError):
        bdbnet.NoSuchThing  # noqa: B018


def test_every_input_type_gives_the_same_features(extractor, person_images):
    path = person_images[0]
    with Image.open(path) as img:
        pil = img.convert("RGB")
    arr = np.array(pil)
    chw = torch.from_numpy(arr).permute(2, 0, 1).contiguous()
    reference = extractor(path)
    assert reference.shape == (1, extractor.feature_dim) == (1, 1536)
    assert reference.dtype == torch.float32
    variants = {
        "Path": extractor(__import__("pathlib").Path(path)),
        "PIL": extractor(pil),
        "HWC uint8 array": extractor(arr),
        "NHWC batch array": extractor(arr[None]),
        "CHW uint8 tensor": extractor(chw),
        "CHW float tensor": extractor(chw.float() / 255),
        "NCHW batch tensor": extractor(chw[None]),
    }
    for name, feats in variants.items():
        assert torch.equal(feats, reference), name
    # one mixed batch (batched convolutions may round differently from single images,
    # hence the float tolerance)
    mixed = extractor.extract([pil, path, arr, chw])
    assert mixed.paths == ["<input 0>", path, "<input 2>", "<input 3>"]
    assert_rows_close(mixed.features, reference.expand(4, -1))


def test_features_are_those_of_the_evaluation_pipeline(tiny_checkpoint, extractor, person_images):
    """Same preprocessing as `bdbnet evaluate`: the checkpoint's test transform (32x16 here)."""
    model, cfg = load_trained_model(tiny_checkpoint)
    transform = build_test_transform(cfg.data)
    with Image.open(person_images[1]) as img:
        x = transform(img.convert("RGB"))[None]
    assert x.shape[-2:] == (32, 16) == extractor.input_size
    with torch.no_grad():
        assert_rows_close(extractor(person_images[1]), model(x))  # NHWC kernels round differently


def test_batching_and_order(extractor, person_images):
    one_by_one = torch.cat([extractor(p) for p in person_images[:4]])
    batched = extractor(person_images[:4])  # batch_size 3: batches of 3 and 1
    assert_rows_close(batched, one_by_one)
    assert not torch.allclose(batched[0], batched[1])


def test_directories_expand_recursively_and_sorted(extractor, person_images, tmp_path):
    (tmp_path / "sub").mkdir()
    for i, src in enumerate(person_images[:3]):
        dst = tmp_path / ("sub" if i == 0 else ".") / f"img{i}.PNG"
        shutil.copy(src, dst)
    (tmp_path / "notes.txt").write_text("not an image")
    found = list_images(tmp_path)
    assert [p.split("/")[-1] for p in found] == ["img1.PNG", "img2.PNG", "img0.PNG"]
    out = extractor.extract(tmp_path)
    assert out.paths == found and out.features.shape == (3, 1536)
    with pytest.raises(FileNotFoundError):
        list_images(tmp_path / "missing")


def test_unreadable_image_raises_or_is_skipped(extractor, person_images, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"definitely not a jpeg")
    inputs = [person_images[0], str(bad), person_images[1]]
    with pytest.raises(UnreadableImageError, match="broken.jpg"):
        extractor(inputs)
    with pytest.warns(UserWarning, match="broken.jpg"):
        out = extractor.extract(inputs, skip_unreadable=True)
    assert out.paths == [person_images[0], person_images[1]]
    assert [p for p, _ in out.skipped] == [str(bad)]
    torch.testing.assert_close(out.features, extractor([person_images[0], person_images[1]]))


def test_in_memory_inputs_are_named_by_position(extractor):
    arr = np.zeros((20, 10, 3), dtype=np.uint8)
    out = extractor.extract([arr, torch.zeros(3, 20, 10, dtype=torch.uint8)])
    assert out.paths == ["<input 0>", "<input 1>"]
    with pytest.raises(ValueError, match="HxWxC"):
        extractor(np.zeros((4, 4, 5), dtype=np.uint8))
    with pytest.raises(TypeError):
        extractor(12)


def test_identity_distinguishes_checkpoints(tiny_checkpoint, extractor):
    flipped = FeatureExtractor(tiny_checkpoint, device="cpu", flip=True)
    assert extractor.identity.mismatch(extractor.identity) is None
    assert "flip" in extractor.identity.mismatch(flipped.identity)
    assert len(extractor.identity.sha256) == 64


def test_official_checkpoint(tmp_path, person_images):
    model = calibrated_bdbnet(12, seed=3, calibrate=False)
    path = tmp_path / "market.pth.tar"
    torch.save({"state_dict": to_official_state_dict(model), "epoch": 7}, path)
    extract = FeatureExtractor(path, device="cpu")
    assert extract.input_size == (384, 128)  # the Market-1501 recipe of the official code
    with Image.open(person_images[0]) as img:
        x = build_test_transform(extract.config.data)(img.convert("RGB"))[None]
    with torch.no_grad():
        expected = model(x)
    assert_rows_close(extract(person_images[0]), expected)  # NHWC kernels round differently


@needs_native_bf16
def test_bf16_extraction_still_ranks_each_image_first(tiny_checkpoint, person_images):
    # bf16 features of this random-weight model differ from its fp32 ones by 20-60% (its
    # calibrated BatchNorms amplify rounding), so only ranks are asserted: an image's own copy,
    # extracted in another batch composition, must still be its nearest neighbour.
    extract = FeatureExtractor(tiny_checkpoint, device="cpu", batch_size=4, amp="bf16")
    gallery = extract(person_images)
    queries = torch.cat([extract(p) for p in person_images])
    assert torch.isfinite(gallery).all()
    nearest = torch.cdist(queries, gallery).argmin(dim=1)
    assert nearest.tolist() == list(range(len(person_images)))


def test_extractor_defaults_to_auto_precision_and_channels_last(tiny_checkpoint, monkeypatch):
    from bdbnet.runtime import precision as runtime

    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: False)  # auto -> fp32 on this CPU
    fast = FeatureExtractor(tiny_checkpoint, device="cpu", batch_size=4)
    plain = FeatureExtractor(
        tiny_checkpoint, device="cpu", batch_size=4, amp="none", channels_last=False
    )
    assert (fast.amp, fast.channels_last) == ("auto", True)
    images = [np.full((64, 32, 3), 40 * i, dtype=np.uint8) for i in range(4)]
    a, b = fast(images), plain(images)
    assert_rows_close(a, b)  # same features up to the kernels' rounding


def test_threaded_decoding_gives_the_evaluation_loaders_features_bit_for_bit(
    tiny_checkpoint, person_images
):
    """Files decoded in threads and normalised as uint8 batches on the device: exactly the
    features the evaluation's DataLoader over the PIL transform gives, whatever the threads."""
    from bdbnet.data.records import ImageRecord
    from bdbnet.inference.embed import extract_features

    model, cfg = load_trained_model(tiny_checkpoint)
    records = [ImageRecord(p, 0, 0) for p in person_images[:5]]
    expected = extract_features(
        model, records, build_test_transform(cfg.data), torch.device("cpu"), 2, progress=False
    )
    for workers in (1, 3):
        ext = FeatureExtractor(
            tiny_checkpoint, "cpu", batch_size=2, amp="none", channels_last=False, workers=workers
        )
        assert torch.equal(ext(person_images[:5]), expected)
    with pytest.raises(ValueError, match="workers"):
        FeatureExtractor(tiny_checkpoint, "cpu", workers=-1)


@pytest.mark.cuda
def test_gpu_features_are_the_cpu_features(tiny_checkpoint, person_images, monkeypatch):
    """Files decoded in threads, normalised on the GPU, embedded there: the CPU's features
    (TF32 convolutions off, so the comparison is float32 against float32); with the GPU
    defaults (bf16, channels_last) every image still finds itself first."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    cpu = FeatureExtractor(tiny_checkpoint, "cpu", batch_size=4, amp="none", channels_last=False)
    gpu = FeatureExtractor(tiny_checkpoint, "cuda", batch_size=4, amp="none", workers=2)
    expected = cpu(person_images)
    got = gpu(person_images)
    assert got.device.type == "cpu"
    assert_rows_close(got, expected)
    fast = FeatureExtractor(tiny_checkpoint, "cuda", batch_size=4)
    assert fast.amp == "auto"
    nearest = torch.cdist(fast(person_images), expected).argmin(dim=1)
    assert nearest.tolist() == list(range(len(person_images)))
