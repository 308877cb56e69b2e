from pathlib import Path

import pytest
from fakes import make_folders, write_image

from bdbnet.data import DatasetLayoutError, SplitStats, build_dataset
from bdbnet.data.datasets import CUHK03NPDetected, CUHK03NPLabeled

LABELED = {
    "bounding_box_train": ["0001_c1_1.png", "0001_c2_6.png", "0003_c1_2.png", "0003_c2_7.png"],
    "query": ["0002_c1_1.png", "0004_c2_6.png"],
    "bounding_box_test": ["0002_c2_6.png", "0002_c2_8.png", "0004_c1_3.png"],
}
DETECTED = {
    "bounding_box_train": ["0001_c1_1.png", "0005_c2_9.png"],
    "query": ["0002_c1_2.png"],
    "bounding_box_test": ["0002_c2_7.png"],
}


def make_cuhk03(root: Path) -> Path:
    make_folders(root / "labeled", LABELED)
    make_folders(root / "detected", DETECTED)
    return root


@pytest.mark.parametrize("where", ["dataset", "parent", "variant"])
def test_labeled_from_any_root(tmp_path, where):
    dataset = make_cuhk03(tmp_path / "cuhk03-np")
    root = {"dataset": dataset, "parent": tmp_path, "variant": dataset / "labeled"}[where]
    ds = build_dataset("cuhk03-np-labeled", root=root)
    assert ds.root == str(dataset / "labeled")
    assert [(r.pid, r.camid) for r in ds.train] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [(r.pid, r.camid) for r in ds.query] == [(2, 0), (4, 1)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(2, 1), (2, 1), (4, 0)]
    assert ds.query[0].path == str(dataset / "labeled" / "query" / "0002_c1_1.png")
    assert ds.stats()["train"] == SplitStats(4, 2, 2)


def test_detected_is_the_other_folder(tmp_path):
    make_cuhk03(tmp_path / "cuhk03-np")
    ds = build_dataset("cuhk03-np-detected", root=tmp_path)
    assert ds.root == str(tmp_path / "cuhk03-np" / "detected")
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (2, 1, 1)
    assert [r.pid for r in ds.train] == [0, 1]


def test_missing_variant_is_named(tmp_path):
    make_folders(tmp_path / "cuhk03-np" / "labeled", LABELED)
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("cuhk03-np-detected", root=tmp_path / "cuhk03-np")
    message = str(info.value)
    assert "detected" in message.split("Expected layout")[0]
    assert "<root>/detected/bounding_box_train/PPPP_cC_N.png" in message


def test_bad_name_and_camera(tmp_path):
    make_cuhk03(tmp_path)
    bad = write_image(tmp_path / "labeled" / "query" / "1_1.png")
    with pytest.raises(DatasetLayoutError, match=r"1_1\.png .*0001_c1_1\.png") as info:
        build_dataset("cuhk03-np-labeled", root=tmp_path)
    assert str(bad) in str(info.value)
    bad.unlink()
    write_image(tmp_path / "labeled" / "query" / "0002_c3_1.png")
    with pytest.raises(DatasetLayoutError, match=r"camera c3 .* outside 1\.\.2"):
        build_dataset("cuhk03-np-labeled", root=tmp_path)


def test_published_statistics():
    assert CUHK03NPLabeled.expected_stats == {
        "train": SplitStats(7368, 767, 2),
        "query": SplitStats(1400, 700, 2),
        "gallery": SplitStats(5328, 700, 2),
    }
    assert CUHK03NPDetected.expected_stats["train"] == SplitStats(7365, 767, 2)
    assert CUHK03NPDetected.expected_stats["gallery"] == SplitStats(5332, 700, 2)
