import pytest
from fakes import INSHOP_ROWS, make_inshop

from bdbnet.data import DatasetLayoutError, ImageRecord, SplitStats, build_dataset
from bdbnet.data.datasets import InShop


def test_partition_item_ids_and_separate_gallery(tmp_path):
    root = make_inshop(tmp_path / "In-shop Clothes Retrieval Benchmark")
    ds = build_dataset("inshop", root=tmp_path)
    assert ds.root == str(root)
    assert ds.task == "retrieval"
    assert ds.train == [
        ImageRecord(str(root / "img/WOMEN/Dresses/id_00000002/02_1_front.jpg"), 0, 0),
        ImageRecord(str(root / "img/WOMEN/Dresses/id_00000002/02_2_side.jpg"), 0, 0),
        ImageRecord(str(root / "img/MEN/Denim/id_00000080/01_1_front.jpg"), 1, 0),
    ]
    assert [r.pid for r in ds.query] == [1, 7]
    assert [r.pid for r in ds.gallery] == [1, 7, 7]
    assert ds.gallery is not ds.query  # query vs gallery, not leave-one-out
    assert ds.stats()["gallery"] == SplitStats(3, 2, 1)


def test_images_inside_Img_folder(tmp_path):
    make_inshop(tmp_path, image_base="Img")
    ds = build_dataset("inshop", root=tmp_path)
    assert ds.query[0].path == str(tmp_path / "Img" / INSHOP_ROWS[3][0])


def test_missing_partition_file(tmp_path):
    make_inshop(tmp_path)
    (tmp_path / "Eval" / "list_eval_partition.txt").unlink()
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("inshop", root=tmp_path)
    assert f"{tmp_path} is missing Eval/list_eval_partition.txt " in str(info.value)
    assert "image_name item_id evaluation_status" in str(info.value)


def test_missing_image_folder(tmp_path):
    (tmp_path / "Eval").mkdir()
    (tmp_path / "Eval" / "list_eval_partition.txt").write_text("0\nheader\n")
    with pytest.raises(DatasetLayoutError, match="is missing img or Img/img "):
        build_dataset("inshop", root=tmp_path)


def test_truncated_file(tmp_path):
    make_inshop(tmp_path, count=52712)
    with pytest.raises(DatasetLayoutError, match="says 52712 images on line 1 but lists 8"):
        build_dataset("inshop", root=tmp_path)


@pytest.mark.parametrize(
    ("row", "error"),
    [
        (("img/MEN/x/id_00000009/a.jpg", "00000009", "train"), "item id '00000009'"),
        (("img/MEN/x/id_00000009/a.jpg", "id_00000009", "test"), "status 'test'"),
    ],
)
def test_bad_rows(tmp_path, row, error):
    make_inshop(tmp_path, rows=[*INSHOP_ROWS, row])
    with pytest.raises(DatasetLayoutError, match=f"line 11 of .*: .*{error}"):
        build_dataset("inshop", root=tmp_path)


def test_published_statistics():
    assert InShop.expected_stats == {
        "train": SplitStats(25882, 3997, 1),
        "query": SplitStats(14218, 3985, 1),
        "gallery": SplitStats(12612, 3985, 1),
    }
