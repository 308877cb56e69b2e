import pytest
from fakes import cub_folder, make_cub

from bdbnet.data import DatasetLayoutError, ImageRecord, SplitStats, build_dataset
from bdbnet.data.datasets import CUB200

# classes 1, 2, 100 train; 101, 200 test
CLASSES = {1: 2, 2: 1, 100: 2, 101: 2, 200: 3}


def test_class_split_relabelling_and_leave_one_out(tmp_path):
    root = make_cub(tmp_path / "CUB_200_2011", CLASSES)
    ds = build_dataset("cub200", root=tmp_path)
    assert ds.root == str(root)
    assert ds.task == "retrieval"
    assert [r.pid for r in ds.train] == [0, 0, 1, 2, 2]  # classes 1, 2, 100 relabelled
    assert [r.pid for r in ds.query] == [101, 101, 200, 200, 200]  # test classes kept
    assert ds.gallery is ds.query  # leave-one-out
    assert {r.camid for r in ds.train + ds.query} == {0}
    assert ds.train[0] == ImageRecord(
        str(root / "images" / cub_folder(1) / "Class_1_0000_1.jpg"), 0, 0
    )
    assert ds.stats() == {
        "train": SplitStats(5, 3, 1),
        "query": SplitStats(5, 2, 1),
        "gallery": SplitStats(5, 2, 1),
    }


def test_root_is_the_dataset_folder(tmp_path):
    make_cub(tmp_path, CLASSES)
    assert len(build_dataset("cub200", root=tmp_path).train) == 5


def test_missing_list_file_is_named_with_layout(tmp_path):
    root = make_cub(tmp_path / "CUB_200_2011", CLASSES)
    (root / "image_class_labels.txt").unlink()
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("cub200", root=tmp_path)
    message = str(info.value)
    assert f"{root} is missing image_class_labels.txt " in message
    assert "<root>/images.txt" in message


def test_image_without_label(tmp_path):
    root = make_cub(tmp_path, CLASSES)
    lines = (root / "image_class_labels.txt").read_text().splitlines()
    (root / "image_class_labels.txt").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DatasetLayoutError, match=r"1 image id\(s\) of .*images\.txt have no class"):
        build_dataset("cub200", root=root)


def test_unparseable_line(tmp_path):
    root = make_cub(tmp_path, CLASSES)
    with open(root / "image_class_labels.txt", "a") as f:
        f.write("12 bird\n")
    with pytest.raises(DatasetLayoutError, match=r"line 11 of .*: class 'bird' is not an integer"):
        build_dataset("cub200", root=root)


def test_partial_copy_missing_images(tmp_path):
    root = make_cub(tmp_path, CLASSES)
    (root / "images" / cub_folder(200) / "Class_200_0002_10.jpg").unlink()
    with pytest.raises(DatasetLayoutError, match=r"1 of the 10 images listed in .*images\.txt"):
        build_dataset("cub200", root=root)


def test_published_statistics(tmp_path):
    assert CUB200.expected_stats == {
        "train": SplitStats(5864, 100, 1),
        "query": SplitStats(5924, 100, 1),
        "gallery": SplitStats(5924, 100, 1),
    }
    messages = CUB200(make_cub(tmp_path, CLASSES)).compare_with_published()
    assert messages[0] == (
        "train: found 5 images / 3 identities, the published cub200 has 5864 / 100 "
        "(a partial copy?)"
    )
