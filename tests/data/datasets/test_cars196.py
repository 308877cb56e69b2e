import pytest
from fakes import make_cars196

from bdbnet.data import DatasetLayoutError, ImageRecord, SplitStats, build_dataset
from bdbnet.data.datasets import Cars196

CLASSES = [1, 1, 98, 5, 99, 99, 196, 150]


def test_annotations_split_by_class(tmp_path):
    root = make_cars196(tmp_path / "cars196", CLASSES)
    ds = build_dataset("cars196", root=tmp_path)
    assert ds.root == str(root)
    assert ds.task == "retrieval"
    # classes 1, 5, 98 -> 0, 1, 2 (file order kept); the mat's own test flag is ignored
    assert ds.train == [
        ImageRecord(str(root / "car_ims/000001.jpg"), 0, 0),
        ImageRecord(str(root / "car_ims/000002.jpg"), 0, 0),
        ImageRecord(str(root / "car_ims/000003.jpg"), 2, 0),
        ImageRecord(str(root / "car_ims/000004.jpg"), 1, 0),
    ]
    assert [r.pid for r in ds.query] == [99, 99, 196, 150]
    assert ds.query[2].path == str(root / "car_ims/000007.jpg")
    assert ds.gallery is ds.query
    assert ds.stats()["query"] == SplitStats(4, 3, 1)


def test_single_annotation_file(tmp_path):
    # squeeze_me turns a 1-element struct array into a scalar: still one record
    make_cars196(tmp_path, [120])
    ds = build_dataset("cars196", root=tmp_path)
    assert (len(ds.train), [r.pid for r in ds.query]) == (0, [120])


def test_missing_mat_file_is_named(tmp_path):
    root = make_cars196(tmp_path, CLASSES)
    (root / "cars_annos.mat").unlink()
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("cars196", root=root)
    assert f"{root} is missing cars_annos.mat " in str(info.value)
    assert "<root>/car_ims/000001.jpg" in str(info.value)


def test_mat_without_annotations(tmp_path):
    from scipy.io import savemat

    root = make_cars196(tmp_path, CLASSES)
    savemat(str(root / "cars_annos.mat"), {"class_names": ["a", "b"]})
    with pytest.raises(DatasetLayoutError, match="has no 'annotations' array"):
        build_dataset("cars196", root=root)


def test_corrupt_mat_file(tmp_path):
    root = make_cars196(tmp_path, CLASSES)
    (root / "cars_annos.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(DatasetLayoutError, match=r"cannot read .*cars_annos\.mat"):
        build_dataset("cars196", root=root)


def test_missing_image(tmp_path):
    root = make_cars196(tmp_path, CLASSES)
    (root / "car_ims/000008.jpg").unlink()
    with pytest.raises(DatasetLayoutError, match=r"1 of the 8 images .*000008\.jpg"):
        build_dataset("cars196", root=root)


def test_published_statistics():
    assert Cars196.expected_stats == {
        "train": SplitStats(8054, 98, 1),
        "query": SplitStats(8131, 98, 1),
        "gallery": SplitStats(8131, 98, 1),
    }
