import pytest
from fakes import SOP_HEADER, make_sop

from bdbnet.data import DatasetLayoutError, ImageRecord, SplitStats, build_dataset
from bdbnet.data.datasets import StanfordOnlineProducts


def test_lists_relabelling_and_leave_one_out(tmp_path):
    root = make_sop(tmp_path / "Stanford_Online_Products")
    ds = build_dataset("sop", root=tmp_path)
    assert ds.root == str(root)
    assert ds.task == "retrieval"
    assert ds.train == [
        ImageRecord(str(root / "bicycle_final/111085122871_0.JPG"), 0, 0),
        ImageRecord(str(root / "bicycle_final/111085122871_1.JPG"), 0, 0),
        ImageRecord(str(root / "bicycle_final/111265328556_0.JPG"), 1, 0),
        ImageRecord(str(root / "cabinet_final/110738398118_0.JPG"), 2, 0),
    ]
    assert [r.pid for r in ds.query] == [11319, 11319, 11320]
    assert ds.gallery is ds.query
    assert ds.stats()["train"] == SplitStats(4, 3, 1)


def test_missing_list_file(tmp_path):
    root = make_sop(tmp_path)
    (root / "Ebay_test.txt").unlink()
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("sop", root=root)
    assert f"{root} is missing Ebay_test.txt " in str(info.value)
    assert "image_id class_id super_class_id path" in str(info.value)


def test_short_line_names_file_and_line(tmp_path):
    root = make_sop(tmp_path)
    (root / "Ebay_train.txt").write_text(SOP_HEADER + "1 1 bicycle_final/111085122871_0.JPG\n")
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("sop", root=root)
    assert f"line 2 of {root / 'Ebay_train.txt'}" in str(info.value)
    assert "'1 1 1 bicycle_final/111085122871_0.JPG'" in str(info.value)


def test_published_statistics():
    assert StanfordOnlineProducts.expected_stats == {
        "train": SplitStats(59551, 11318, 1),
        "query": SplitStats(60502, 11316, 1),
        "gallery": SplitStats(60502, 11316, 1),
    }
