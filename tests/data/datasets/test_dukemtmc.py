from pathlib import Path

import pytest
from fakes import make_folders, write_image

from bdbnet.data import DatasetLayoutError, ImageRecord, SplitStats, build_dataset
from bdbnet.data.datasets import DukeMTMCReID

TRAIN = ["0001_c2_f0046182.jpg", "0001_c5_f0051341.jpg", "0005_c8_f0001234.jpg"]
QUERY = ["0003_c1_f0044158.jpg", "0007_c6_f0070123.jpg"]
GALLERY = ["0003_c4_f0053452.jpg", "0007_c6_f0071000.jpg", "7139_c8_f0165325.jpg"]


def make_duke(root: Path) -> Path:
    return make_folders(
        root, {"bounding_box_train": TRAIN, "query": QUERY, "bounding_box_test": GALLERY}
    )


def test_counts_pids_cameras_and_relabelling(tmp_path):
    root = make_duke(tmp_path / "DukeMTMC-reID")
    ds = build_dataset("dukemtmcreid", root=tmp_path)  # the parent works too
    assert ds.root == str(root)
    assert ds.task == "reid"
    train = root / "bounding_box_train"
    assert ds.train == [
        ImageRecord(str(train / TRAIN[0]), 0, 1),
        ImageRecord(str(train / TRAIN[1]), 0, 4),
        ImageRecord(str(train / TRAIN[2]), 1, 7),
    ]
    assert [(r.pid, r.camid) for r in ds.query] == [(3, 0), (7, 5)]
    # gallery pids kept as in the files (7139 is a distractor identity)
    assert [(r.pid, r.camid) for r in ds.gallery] == [(3, 3), (7, 5), (7139, 7)]
    assert ds.stats()["gallery"] == SplitStats(3, 3, 3)


def test_root_is_the_dataset_folder(tmp_path):
    make_duke(tmp_path)
    assert len(build_dataset("dukemtmcreid", root=tmp_path).train) == 3


def test_market_name_is_rejected_with_its_path(tmp_path):
    make_duke(tmp_path)
    bad = write_image(tmp_path / "query" / "0002_c1s1_000451_03.jpg")
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("dukemtmcreid", root=tmp_path)
    assert str(bad) in str(info.value)
    assert "0001_c2_f0046182.jpg" in str(info.value)


def test_camera_nine_is_out_of_range(tmp_path):
    make_duke(tmp_path)
    write_image(tmp_path / "bounding_box_test" / "0003_c9_f0000001.jpg")
    with pytest.raises(DatasetLayoutError, match=r"camera c9 in .* outside 1\.\.8"):
        build_dataset("dukemtmcreid", root=tmp_path)


def test_missing_folder_is_named_with_layout(tmp_path):
    make_folders(tmp_path, {"bounding_box_train": TRAIN, "query": QUERY})
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("dukemtmcreid", root=tmp_path)
    assert f"{tmp_path} is missing bounding_box_test " in str(info.value)
    assert "PPPP_cC_fFFFFFFF.jpg" in str(info.value)


def test_published_statistics(tmp_path):
    messages = DukeMTMCReID(make_duke(tmp_path)).compare_with_published()
    assert messages[2] == (
        "gallery: found 3 images / 3 identities, the published dukemtmcreid has 17661 / 1110 "
        "(a partial copy?)"
    )
    assert DukeMTMCReID.expected_stats["train"] == SplitStats(16522, 702, 8)
    assert DukeMTMCReID.expected_stats["query"] == SplitStats(2228, 702, 8)
