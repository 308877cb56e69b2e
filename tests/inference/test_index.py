import json

import numpy as np
import pytest
import torch
from conftest import feature_scale

from bdbnet.inference import (
    FeatureExtractor,
    GalleryIndex,
    IndexMismatchError,
    ModelIdentity,
    labels_from_paths,
)

IDENTITY = ModelIdentity("ab" * 32, 4, False, "model.pt", {"resize": [32, 16]})


def small_index(dtype=torch.float32):
    feats = torch.arange(12, dtype=torch.float32).view(3, 4).to(dtype)
    return GalleryIndex(
        feats,
        ["a/0001_c1s1_01.jpg", "b/ünïcode name.png", "c/x.jpg"],
        IDENTITY,
        pids=[1, 2, 3],
        camids=[0, 1, 0],
        skipped=["broken.jpg"],
    )


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".npy"])
def test_save_load_round_trip(tmp_path, suffix):
    index = small_index(torch.float16 if suffix == ".npz" else torch.float32)
    path = index.save(tmp_path / f"gallery{suffix}")
    assert GalleryIndex.is_index_file(path)
    back = GalleryIndex.load(path)
    assert torch.equal(back.features, index.features)
    assert back.features.dtype == index.features.dtype
    assert back.paths == index.paths
    assert back.identity == IDENTITY
    assert back.pids.tolist() == [1, 2, 3] and back.camids.tolist() == [0, 1, 0]
    assert back.skipped == ["broken.jpg"]
    if suffix == ".npy":
        assert (tmp_path / "gallery.paths.txt").read_text().splitlines() == index.paths
        assert json.loads((tmp_path / "gallery.json").read_text())["skipped"] == ["broken.jpg"]


def test_index_validation_and_bad_files(tmp_path):
    with pytest.raises(ValueError, match="3 features but 2 paths"):
        GalleryIndex(torch.zeros(3, 4), ["a", "b"])
    with pytest.raises(ValueError, match="identity says"):
        GalleryIndex(torch.zeros(1, 5), ["a"], IDENTITY)
    with pytest.raises(ValueError, match="end in"):
        small_index().save(tmp_path / "gallery.pt")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a bdbnet gallery index"):
        GalleryIndex.load(tmp_path / "other.npz")
    np.save(tmp_path / "lonely.npy", np.zeros((2, 4)))
    with pytest.raises(FileNotFoundError, match="paths.txt"):
        GalleryIndex.load(tmp_path / "lonely.npy")


def test_querying_with_another_model_is_refused():
    index = small_index()
    other = ModelIdentity("cd" * 32, 4, False, "other.pt")
    with pytest.raises(IndexMismatchError, match="another model"):
        index.search(torch.zeros(1, 4), identity=other)
    with pytest.raises(IndexMismatchError, match="5-d"):
        index.search(torch.zeros(1, 5))
    res = index.search(torch.tensor([8.0, 9, 10, 11]), topk=2, identity=IDENTITY)
    assert res.indices.tolist() == [[2, 1]]


def test_labels_from_market_style_names():
    pids, cams = labels_from_paths(["x/0002_c1s1_000451_03.jpg", "-1_c6s2_000001_00.jpg"])
    assert pids.tolist() == [2, -1] and cams.tolist() == [0, 5]
    assert labels_from_paths(["0002_c1_f0046182.jpg", "holiday.jpg"]) is None


def test_extract_then_search_finds_each_image_itself(tiny_checkpoint, person_images, tmp_path):
    extract = FeatureExtractor(tiny_checkpoint, device="cpu", batch_size=4)
    index = GalleryIndex.from_extraction(extract.extract(person_images), extract.identity)
    assert index.pids.tolist() == [1, 1, 2, 2, 3, 3, 4, 4]
    path = index.save(tmp_path / "gallery.safetensors")
    loaded = GalleryIndex.load(path)
    queries = [person_images[5], person_images[2]]
    res = loaded.search(extract(queries), topk=3, identity=extract.identity)
    assert res.indices[:, 0].tolist() == [5, 2]
    assert [loaded.paths[i] for i in res.indices[:, 0].tolist()] == queries
    # An image's own copy is at (nearly) zero distance, relative to the features' scale; any
    # other image is far: the threshold holds whatever kernels the CPU picks.
    scale = feature_scale(loaded.features)
    assert res.distances[:, 0].max() < 5e-3 * scale < 0.1 * scale < res.distances[:, 1].min()
