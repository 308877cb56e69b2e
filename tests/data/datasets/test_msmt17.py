import pytest
from fakes import MSMT_GALLERY, make_msmt17

from bdbnet.data import DatasetLayoutError, ImageRecord, SplitStats, build_dataset
from bdbnet.data.datasets import MSMT17


@pytest.mark.parametrize(
    ("version", "train_dir", "test_dir"),
    [
        ("V1", "train", "test"),
        ("V2", "mask_train_v2", "mask_test_v2"),
    ],
)
def test_versions_train_plus_val_and_cameras(tmp_path, version, train_dir, test_dir):
    root = make_msmt17(tmp_path / f"MSMT17_{version}", version)
    ds = build_dataset("msmt17", root=tmp_path)  # parent with the standard folder name
    assert ds.root == str(root)
    assert ds.extra == {"version": version}
    # list_train (3 images, pids 0, 1) + list_val (2 images, pids 1, 2), relabelled
    assert ds.train == [
        ImageRecord(str(root / train_dir / "0000/0000_000_01_0303morning_0015_0.jpg"), 0, 0),
        ImageRecord(str(root / train_dir / "0000/0000_001_05_0303morning_0036_1.jpg"), 0, 4),
        ImageRecord(str(root / train_dir / "0001/0001_000_14_0303noon_0003_2.jpg"), 1, 13),
        ImageRecord(str(root / train_dir / "0001/0001_001_15_0303afternoon_0101_0.jpg"), 1, 14),
        ImageRecord(str(root / train_dir / "0002/0002_000_02_0113noon_0001_0.jpg"), 2, 1),
    ]
    assert [(r.pid, r.camid) for r in ds.query] == [(0, 0), (3, 6)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(0, 8), (3, 6), (3, 11)]
    assert ds.query[1].path == str(root / test_dir / "0003/0003_004_07_0114afternoon_0201_1.jpg")
    assert ds.stats()["train"] == SplitStats(5, 3, 5)


def test_root_is_the_dataset_folder(tmp_path):
    make_msmt17(tmp_path)
    assert len(build_dataset("msmt17", root=tmp_path).gallery) == len(MSMT_GALLERY)


def test_missing_list_file_is_named(tmp_path):
    make_msmt17(tmp_path / "MSMT17_V1")
    (tmp_path / "MSMT17_V1" / "list_val.txt").unlink()
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("msmt17", root=tmp_path)
    message = str(info.value)
    assert f"{tmp_path / 'MSMT17_V1'} is missing list_val.txt " in message
    assert "list_train.txt, list_val.txt, list_query.txt, list_gallery.txt" in message


def test_missing_image_folder_names_both_versions(tmp_path):
    root = make_msmt17(tmp_path)
    (root / "test").rename(root / "elsewhere")
    with pytest.raises(DatasetLayoutError, match="is missing test or mask_test_v2"):
        build_dataset("msmt17", root=root)


def test_bad_list_line_names_file_and_line(tmp_path):
    root = make_msmt17(tmp_path)
    with open(root / "list_query.txt", "a") as f:
        f.write("0004/0004_000_03_0114noon_0001_0.jpg\n")
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("msmt17", root=root)
    assert f"line 3 of {root / 'list_query.txt'}" in str(info.value)
    assert "0000/0000_000_01_0303morning_0015_0.jpg 0" in str(info.value)


def test_bad_camera_field(tmp_path):
    root = make_msmt17(tmp_path)
    (root / "list_gallery.txt").write_text("0003/0003_000_16_0114morning_0001_0.jpg 3\n")
    with pytest.raises(DatasetLayoutError, match=r"line 1 of .*camera 16 .* outside 1\.\.15"):
        build_dataset("msmt17", root=root)
    (root / "list_gallery.txt").write_text("0003/image.jpg 3\n")
    with pytest.raises(DatasetLayoutError, match="cannot parse the camera from '0003/image.jpg'"):
        build_dataset("msmt17", root=root)


def test_listed_image_missing_on_disk(tmp_path):
    root = make_msmt17(tmp_path)
    gone = root / "test" / MSMT_GALLERY[1][0]
    gone.unlink()
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("msmt17", root=root)
    assert str(info.value).startswith(
        f"msmt17: 1 of the 3 images listed in {root / 'list_gallery.txt'} are missing"
    )
    assert str(gone) in str(info.value)


def test_published_statistics(tmp_path):
    assert MSMT17.expected_stats == {
        "train": SplitStats(32621, 1041, 15),
        "query": SplitStats(11659, 3060, 15),
        "gallery": SplitStats(82161, 3060, 15),
    }
    assert len(MSMT17(make_msmt17(tmp_path)).compare_with_published()) == 3
