import pytest
from fakes import make_folders, write_image

from bdbnet.data import DatasetLayoutError, ImageRecord, build_dataset
from bdbnet.data.datasets.folder import parse_camera


def test_integer_ids_and_cameras_from_names(tmp_path):
    make_folders(
        tmp_path,
        {
            "train/12": ["a_c1_001.jpg", "b_c2_002.png"],
            "train/3": ["c1-0007.jpg"],
            "query/40": ["0040_c3_1.jpg"],
            "gallery/40": ["0040_c1_5.jpg", "0040_c3_6.jpg"],
            "gallery/7": ["x c2.jpg"],
        },
    )
    ds = build_dataset("folder", root=tmp_path)
    assert ds.task == "reid"
    # train ids 3, 12 -> 0, 1 (numeric order)
    assert ds.train == [
        ImageRecord(str(tmp_path / "train/12/a_c1_001.jpg"), 1, 0),
        ImageRecord(str(tmp_path / "train/12/b_c2_002.png"), 1, 1),
        ImageRecord(str(tmp_path / "train/3/c1-0007.jpg"), 0, 0),
    ]
    assert ds.query == [ImageRecord(str(tmp_path / "query/40/0040_c3_1.jpg"), 40, 2)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(40, 0), (40, 2), (7, 1)]


def test_names_without_camera_get_a_camera_each(tmp_path):
    make_folders(
        tmp_path,
        {
            "train/alice": ["1.jpg", "2.jpg"],
            "train/bob": ["1.jpg"],
            "query/carol": ["front.jpg"],
            "query/dave": ["front_c2.jpg"],
            "gallery/carol": ["side.jpg", "back.jpg"],
            "gallery/dave": ["x.jpg"],
        },
    )
    ds = build_dataset("folder", root=tmp_path)
    assert [r.pid for r in ds.train] == [0, 0, 1]
    # non-integer names are numbered in sorted order, shared by query and gallery
    assert [r.pid for r in ds.query] == [0, 1]
    assert [r.pid for r in ds.gallery] == [0, 0, 1]
    assert ds.extra["id_names"] == {0: "carol", 1: "dave"}
    # front_c2 is camera 2 (camid 1); every other image gets its own camera above it
    cams = [r.camid for r in ds.train + ds.query + ds.gallery]
    assert ds.query[1].camid == 1
    others = [c for c in cams if c != 1]
    assert len(set(others)) == len(others) == 7
    assert min(others) >= 2
    # so a query never shares a camera with its gallery matches
    assert ds.query[0].camid not in {r.camid for r in ds.gallery}
    assert ds.stats()["gallery"].cameras == 3


@pytest.mark.parametrize(
    ("name", "camera"),
    [
        ("0002_c1s1_000451_03.jpg", 1),
        ("c12_0001.png", 12),
        ("img-c3.jpg", 3),
        ("pic12.jpg", None),
        ("abc_cam1.jpg", None),
        ("IMG_1234.jpg", None),
    ],
)
def test_parse_camera(name, camera):
    assert parse_camera(name) == camera


def test_loose_image_is_reported_with_its_path(tmp_path):
    make_folders(tmp_path, {"train/1": ["a.jpg"], "query/1": ["b.jpg"], "gallery/1": ["c.jpg"]})
    loose = write_image(tmp_path / "gallery" / "d.jpg")
    with pytest.raises(DatasetLayoutError, match=f"{loose} is not inside an identity folder"):
        build_dataset("folder", root=tmp_path)


def test_stray_files_warn(tmp_path):
    make_folders(tmp_path, {"train/1": ["a.jpg"], "query/1": ["b.jpg"], "gallery/1": ["c.jpg"]})
    (tmp_path / "gallery" / "README.txt").write_text("x")
    (tmp_path / "gallery" / "1" / "notes.txt").write_text("x")
    with pytest.warns(UserWarning, match="non-image"):
        ds = build_dataset("folder", root=tmp_path)
    assert len(ds.gallery) == 1


def test_missing_split_folder(tmp_path):
    make_folders(tmp_path, {"train/1": ["a.jpg"], "query/1": ["b.jpg"]})
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("folder", root=tmp_path)
    assert f"{tmp_path} is missing gallery " in str(info.value)
    assert "<root>/gallery/<id>/<image>" in str(info.value)
    assert "same-camera filter never hides a true match" in str(info.value)
