import io
import os

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from bdbnet.data.image_dataset import ImageDataset, UnreadableImageError, read_image
from bdbnet.data.records import ImageRecord

TO_TENSOR = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])


@pytest.fixture
def records(tmp_path) -> list[ImageRecord]:
    specs = [((255, 0, 0), 3, 0), ((0, 255, 0), 3, 2), ((0, 0, 255), 8, 1)]
    out = []
    for i, (colour, pid, camid) in enumerate(specs):
        path = tmp_path / f"img{i}.png"  # PNG: lossless, exact pixel values
        Image.new("RGB", (4, 6), colour).save(path)
        out.append(ImageRecord(str(path), pid, camid))
    return out


def test_items_are_image_pid_camid_index(records):
    ds = ImageDataset(records, transform=TO_TENSOR)
    assert len(ds) == 3
    assert ds.pids == [3, 3, 8]
    img, pid, camid, index = ds[1]
    assert (pid, camid, index) == (3, 2, 1)
    assert img.shape == (3, 6, 4)
    expected = torch.zeros(3, 6, 4)
    expected[1] = 1.0
    assert torch.equal(img, expected)
    img, pid, camid, index = ds[2]
    assert (pid, camid, index) == (8, 1, 2)
    assert torch.equal(img[2], torch.ones(6, 4))


def test_without_transform_items_are_rgb_pil_images(tmp_path):
    path = tmp_path / "grey.png"
    Image.new("L", (3, 5), 77).save(path)
    ds = ImageDataset([ImageRecord(str(path), 1, 0)])
    img, pid, camid, index = ds[0]
    assert isinstance(img, Image.Image)
    assert img.mode == "RGB"
    assert img.size == (3, 5)
    assert img.getpixel((1, 1)) == (77, 77, 77)
    assert (pid, camid, index) == (1, 0, 0)


def test_records_are_copied(records):
    source = list(records)
    ds = ImageDataset(source)
    source.pop()
    assert len(ds) == 3


def test_cache_decodes_each_file_once(records, monkeypatch):
    import bdbnet.data.image_dataset as module

    calls = []
    real_read = module.read_image

    def counting_read(path):
        calls.append(path)
        return real_read(path)

    monkeypatch.setattr(module, "read_image", counting_read)
    ds = ImageDataset(records, transform=TO_TENSOR, cache=True)
    for _ in range(3):
        for i in range(len(ds)):
            ds[i]
    assert calls == [r.path for r in records]


def test_cache_serves_image_after_file_is_deleted(records):
    ds = ImageDataset(records, transform=TO_TENSOR, cache=True)
    first = ds[0][0]
    os.remove(records[0].path)
    again = ds[0][0]
    assert torch.equal(first, again)
    # the cached PIL image is not modified by the transform
    assert torch.equal(ds[0][0][0], torch.ones(6, 4))


def test_without_cache_file_is_read_every_time(records):
    ds = ImageDataset(records, transform=TO_TENSOR, cache=False)
    ds[0]
    os.remove(records[0].path)
    with pytest.raises(UnreadableImageError, match="cannot read image"):
        ds[0]


def test_corrupt_file_raises_with_path(tmp_path):
    bad = tmp_path / "0002_c1s1_000451_03.jpg"
    bad.write_bytes(b"this is not a jpeg")
    ds = ImageDataset([ImageRecord(str(bad), 2, 0)], transform=TO_TENSOR)
    with pytest.raises(UnreadableImageError) as info:
        ds[0]
    assert str(bad) in str(info.value)
    assert isinstance(info.value, OSError)
    assert info.value.__cause__ is not None


def test_truncated_jpeg_raises_with_path(tmp_path):
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buffer, format="JPEG", quality=95)
    data = buffer.getvalue()
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableImageError, match="cut.jpg"):
        read_image(str(bad))


def test_missing_file_raises_with_path(tmp_path):
    missing = tmp_path / "missing.jpg"
    with pytest.raises(UnreadableImageError) as info:
        read_image(str(missing))
    assert str(missing) in str(info.value)


def test_works_with_dataloader(records):
    ds = ImageDataset(records, transform=TO_TENSOR)
    imgs, pids, camids, indices = next(iter(DataLoader(ds, batch_size=3, shuffle=False)))
    assert imgs.shape == (3, 3, 6, 4)
    assert pids.tolist() == [3, 3, 8]
    assert camids.tolist() == [0, 2, 1]
    assert indices.tolist() == [0, 1, 2]
