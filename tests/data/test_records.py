import dataclasses

import pytest

from bdbnet.data.records import DatasetSplits, ImageRecord, SplitStats, relabel


def test_image_record_defaults_and_is_frozen_and_hashable():
    r = ImageRecord("a.jpg", 5)
    assert (r.path, r.pid, r.camid) == ("a.jpg", 5, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.pid = 6  # type: ignore[misc]
    assert ImageRecord("a.jpg", 5, 0) == r
    assert len({r, ImageRecord("a.jpg", 5, 0), ImageRecord("a.jpg", 5, 1)}) == 2


def test_split_stats_counts_images_identities_and_cameras():
    records = [
        ImageRecord("a", 3, 0),
        ImageRecord("b", 3, 1),
        ImageRecord("c", 7, 1),
        ImageRecord("d", 0, 5),
        ImageRecord("e", 7, 0),
    ]
    assert SplitStats.of(records) == SplitStats(images=5, identities=3, cameras=3)
    assert SplitStats.of([]) == SplitStats(0, 0, 0)


def test_dataset_splits_stats_and_num_train_pids():
    train = [ImageRecord("t0", 0, 0), ImageRecord("t1", 0, 1), ImageRecord("t2", 1, 2)]
    query = [ImageRecord("q0", 10, 0)]
    gallery = [ImageRecord("g0", 10, 1), ImageRecord("g1", 0, 1), ImageRecord("g2", 11, 4)]
    splits = DatasetSplits("toy", "/nowhere", train, query, gallery)
    assert splits.task == "reid"
    assert splits.extra == {}
    assert splits.num_train_pids == 2
    assert splits.stats() == {
        "train": SplitStats(3, 2, 3),
        "query": SplitStats(1, 1, 1),
        "gallery": SplitStats(3, 3, 2),
    }


def test_dataset_splits_extra_is_not_shared_between_instances():
    a = DatasetSplits("a", "r", [], [], [])
    b = DatasetSplits("b", "r", [], [], [])
    a.extra["x"] = 1
    assert b.extra == {}


def test_relabel_maps_sorted_pids_to_contiguous_labels():
    records = [
        ImageRecord("p/a.jpg", 42, 3),
        ImageRecord("p/b.jpg", 7, 0),
        ImageRecord("p/c.jpg", 42, 1),
        ImageRecord("p/d.jpg", 1500, 5),
        ImageRecord("p/e.jpg", 7, 2),
    ]
    out = relabel(records)
    # sorted original pids 7 < 42 < 1500 -> 0, 1, 2; order, paths and cameras unchanged
    assert out == [
        ImageRecord("p/a.jpg", 1, 3),
        ImageRecord("p/b.jpg", 0, 0),
        ImageRecord("p/c.jpg", 1, 1),
        ImageRecord("p/d.jpg", 2, 5),
        ImageRecord("p/e.jpg", 0, 2),
    ]
    # the input is not modified
    assert [r.pid for r in records] == [42, 7, 42, 1500, 7]


def test_relabel_sorts_numerically_including_zero_and_negative():
    out = relabel(
        [
            ImageRecord("a", 10, 0),
            ImageRecord("b", -1, 0),
            ImageRecord("c", 9, 0),
            ImageRecord("d", 0, 0),
        ]
    )
    # numeric order -1 < 0 < 9 < 10 (not string order, where "10" < "9")
    assert [r.pid for r in out] == [3, 0, 2, 1]


def test_relabel_is_independent_of_record_order():
    records = [ImageRecord(str(i), pid, 0) for i, pid in enumerate([5, 3, 9, 3, 5])]
    forward = {r.path: r.pid for r in relabel(records)}
    backward = {r.path: r.pid for r in relabel(records[::-1])}
    assert forward == backward == {"0": 1, "1": 0, "2": 2, "3": 0, "4": 1}


def test_relabel_of_empty_split():
    assert relabel([]) == []
