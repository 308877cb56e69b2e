"""Fault injection for the one image reader: every PIL mode, bombs, corrupt and odd files."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from bdbnet.data.checks import check_images, check_splits
from bdbnet.data.images import ENV_MAX_PIXELS, UnreadableImageError, read_image, to_rgb
from bdbnet.data.records import DatasetSplits, ImageRecord
from bdbnet.errors import DataError, ImageError

RNG = np.random.default_rng(0)
GREY8 = RNG.integers(0, 256, size=(12, 10), dtype=np.uint8)
RGB8 = RNG.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(GREY8.astype(np.uint16) * 257).save(path)  # the 8-bit twin, 16-bit wide
    assert Image.open(path).mode.startswith("I;16")
    out = np.asarray(read_image(path))
    assert out.shape == (12, 10, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], GREY8)  # exact: 257 * v scales back to v
    assert out.min() < 255  # the old reader gave a white image


def test_32bit_integer_and_float_modes():
    i_img = Image.fromarray(GREY8.astype(np.int32) * 257, "I")
    np.testing.assert_array_equal(np.asarray(to_rgb(i_img))[..., 1], GREY8)
    f_unit = Image.fromarray(GREY8.astype(np.float32) / 255.0, "F")
    np.testing.assert_array_equal(np.asarray(to_rgb(f_unit))[..., 2], GREY8)
    f_bytes = Image.fromarray(GREY8.astype(np.float32), "F")
    np.testing.assert_array_equal(np.asarray(to_rgb(f_bytes))[..., 0], GREY8)


@pytest.mark.parametrize("mode", ["1", "L", "P", "CMYK", "YCbCr", "LAB", "HSV", "RGBA", "LA"])
def test_every_mode_becomes_8bit_rgb(tmp_path, mode):
    img = Image.fromarray(RGB8).convert(mode) if mode not in ("LAB", "HSV") else None
    if img is None:
        img = Image.fromarray(RGB8).convert("RGB").convert(mode)
    rgb = to_rgb(img)
    assert rgb.mode == "RGB" and rgb.size == (10, 12)
    if mode in ("RGBA", "LA"):  # opaque: unchanged
        np.testing.assert_array_equal(np.asarray(rgb), np.asarray(img.convert("RGB")))


def test_transparency_is_composited_over_black(tmp_path):
    rgba = np.dstack([RGB8, np.full((12, 10), 0, np.uint8)])
    rgba[:6, :, 3] = 255
    path = tmp_path / "half.png"
    Image.fromarray(rgba, "RGBA").save(path)
    out = np.asarray(read_image(path))
    np.testing.assert_array_equal(out[:6], RGB8[:6])
    assert out[6:].max() == 0
    palette = Image.fromarray(RGB8).convert("P")
    palette.info["transparency"] = 0
    assert to_rgb(palette).mode == "RGB"


def test_a_decompression_bomb_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("L", (400, 300)).save(path)
    monkeypatch.setenv(ENV_MAX_PIXELS, "100000")
    with pytest.raises(ImageError, match=r"bomb\.png: 400x300 = 120000 pixels is over"):
        read_image(path)
    assert read_image(path, max_pixels=None).size == (400, 300)
    monkeypatch.setenv(ENV_MAX_PIXELS, "0")  # no limit
    assert read_image(path).size == (400, 300)
    monkeypatch.setenv(ENV_MAX_PIXELS, "lots")
    with pytest.raises(ImageError, match="BDBNET_MAX_IMAGE_PIXELS='lots'"):
        read_image(path)


def test_pil_bomb_error_and_escalated_warning_become_image_errors(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("L", (200, 100)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)  # PIL: warn > 5000, error > 10000
    with pytest.raises(UnreadableImageError, match="big.png"):
        read_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 15000)  # 20000 px: PIL only warns
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(UnreadableImageError, match="big.png"):
            read_image(path, max_pixels=25000)  # under ours; PIL warns, escalated by the filter
    assert read_image(path, max_pixels=10**9).size == (200, 100)  # our limit above PIL's


@pytest.mark.parametrize(
    "name, content",
    [
        ("random.jpg", bytes(RNG.integers(0, 256, 600, dtype=np.uint8))),
        ("empty.png", b""),
        ("text.png", b"not an image at all\n"),
        ("header_only.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30),
    ],
)
def test_corrupt_files_raise_image_error_naming_the_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageError, match=name):
        read_image(path)


def test_truncated_png_and_self_looping_symlink(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(RGB8).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:-30])
    loop = tmp_path / "loop.png"
    os.symlink(loop, loop)
    for path in (cut, loop, tmp_path):  # a folder is not an image either
        with pytest.raises(ImageError, match=str(path.name)):
            read_image(path)


def test_check_images_lists_every_bad_file_once(tmp_path):
    paths = []
    for i in range(6):
        path = tmp_path / f"{i}.png"
        Image.fromarray(RGB8).save(path)
        paths.append(str(path))
    (tmp_path / "3.png").write_bytes(b"broken")
    (tmp_path / "5.png").unlink()
    bad = check_images(paths + paths, workers=3, progress=False)
    assert [p for p, _ in bad] == [paths[3], paths[5]]
    assert all(reason for _, reason in bad)


def test_check_splits_refuses_empty_and_unreadable_splits(tmp_path):
    good = tmp_path / "0001_c1s1_000001_00.png"
    Image.fromarray(RGB8).save(good)
    bad = tmp_path / "0002_c1s1_000001_00.png"
    bad.write_bytes(b"\x00" * 10)
    rec = [ImageRecord(str(good), 0, 0)]
    with pytest.raises(DataError, match="the query split of demo at .* is empty"):
        check_splits(DatasetSplits("demo", str(tmp_path), rec, [], rec), progress=False)
    splits = DatasetSplits("demo", str(tmp_path), rec, rec, [*rec, ImageRecord(str(bad), 1, 0)])
    with pytest.raises(ImageError, match=r"1 image\(s\) of demo .*0002_c1s1_000001_00.png"):
        check_splits(splits, progress=False)
    check_splits(splits, progress=False, open_images=False)  # --skip-image-check
    check_splits(splits, ("train", "query"), progress=False)


def test_extractor_inputs_use_the_same_conversion(tiny_checkpoint, tmp_path):
    """A 16-bit file and its 8-bit array give the same feature; RGBA arrays are composited."""
    from bdbnet.inference import FeatureExtractor

    grey = np.repeat(np.repeat(GREY8, 4, 0), 2, 1)
    path = tmp_path / "deep.png"
    Image.fromarray(grey.astype(np.uint16) * 257).save(path)
    extract = FeatureExtractor(tiny_checkpoint, device="cpu")
    from_file = extract([str(path)])
    from_array = extract(np.dstack([grey] * 3))
    scale = from_array.abs().max()
    assert float((from_file - from_array).abs().max()) <= 1e-5 * float(scale)
