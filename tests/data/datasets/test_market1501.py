import warnings
from pathlib import Path

import pytest
from fakes import MARKET_TRAIN as TRAIN
from fakes import make_market, write_image
from PIL import Image

from bdbnet.data import DatasetLayoutError, ImageRecord, SplitStats, build_dataset
from bdbnet.data.datasets import Market1501, SyntheticReID
from bdbnet.data.datasets.base import list_images


def _write_jpeg(path: Path) -> None:
    write_image(path)


@pytest.fixture
def market(tmp_path) -> Path:
    return make_market(tmp_path / "market")


def test_counts_and_stats(market):
    ds = build_dataset("market1501", root=market)
    assert ds.name == "market1501"
    assert ds.task == "reid"
    assert ds.root == str(market)
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (5, 2, 3)
    assert ds.num_train_pids == 3
    assert ds.stats() == {
        "train": SplitStats(images=5, identities=3, cameras=5),
        "query": SplitStats(images=2, identities=2, cameras=2),
        "gallery": SplitStats(images=3, identities=3, cameras=3),
    }


def test_train_is_relabelled_and_cameras_are_zero_based(market):
    ds = build_dataset("market1501", root=market)
    folder = market / "bounding_box_train"
    # files are listed sorted by name; pids 2, 7, 10 -> 0, 1, 2; camera cN -> N-1
    assert ds.train == [
        ImageRecord(str(folder / "0002_c1s1_000451_03.jpg"), 0, 0),
        ImageRecord(str(folder / "0002_c2s1_000301_01.jpg"), 0, 1),
        ImageRecord(str(folder / "0007_c3s3_015112_01.jpg"), 1, 2),
        ImageRecord(str(folder / "0010_c5s2_050201_01.jpg"), 2, 4),
        ImageRecord(str(folder / "0010_c6s4_002502_02.jpg"), 2, 5),
    ]


def test_query_and_gallery_keep_original_pids_drop_junk_keep_distractors(market):
    ds = build_dataset("market1501", root=market)
    q, g = market / "query", market / "bounding_box_test"
    assert ds.query == [
        ImageRecord(str(q / "0002_c3s1_000501_00.jpg"), 2, 2),
        ImageRecord(str(q / "0007_c2s1_000101_00.jpg"), 7, 1),
    ]
    assert ds.gallery == [
        ImageRecord(str(g / "0000_c6s1_000001_01.jpg"), 0, 5),
        ImageRecord(str(g / "0002_c1s1_000801_02.jpg"), 2, 0),
        ImageRecord(str(g / "0007_c4s2_000201_01.jpg"), 7, 3),
    ]
    assert all(r.pid != -1 for r in ds.gallery)


def test_parse_name():
    parse = Market1501.parse_name
    ds = Market1501.__new__(Market1501)  # parse_name needs no loaded data
    assert parse(ds, Path("0002_c1s1_000451_03.jpg")) == (2, 1)
    assert parse(ds, Path("1501_c6s4_001877_01.jpg")) == (1501, 6)
    assert parse(ds, Path("-1_c3s2_000401_03.jpg")) == (-1, 3)
    assert parse(ds, Path("0000_c5s1_000001_01.jpg")) == (0, 5)


@pytest.mark.parametrize("folder_name", ["Market-1501-v15.09.15", "market1501", "Market-1501"])
def test_root_may_be_the_parent_of_the_standard_folder(tmp_path, folder_name):
    make_market(tmp_path / folder_name)
    ds = build_dataset("market1501", root=tmp_path)
    assert ds.root == str(tmp_path / folder_name)
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (5, 2, 3)
    assert ds.train[0].path == str(tmp_path / folder_name / "bounding_box_train" / TRAIN[0])


def test_root_accepts_str_and_expands_user(tmp_path, monkeypatch):
    make_market(tmp_path / "Market-1501-v15.09.15")
    monkeypatch.setenv("HOME", str(tmp_path))
    ds = build_dataset("market1501", root="~")
    assert ds.root == str(tmp_path / "Market-1501-v15.09.15")


def test_missing_folder_names_it_and_the_expected_layout(market):
    for path in (market / "query").iterdir():
        path.unlink()
    (market / "query").rmdir()
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("market1501", root=market)
    message = str(info.value)
    assert f"{market} is missing query " in message
    assert "bounding_box_train" not in message.split("Expected layout")[0]
    assert "Expected layout:" in message
    assert "<root>/bounding_box_train/PPPP_cCsS_FFFFFF_DD.jpg" in message
    assert "Market-1501-v15.09.15" in message  # the sub-folder names it also tried
    assert isinstance(info.value, FileNotFoundError)


def test_empty_root_names_all_three_folders(tmp_path):
    with pytest.raises(
        DatasetLayoutError, match="missing bounding_box_train, query, bounding_box_test"
    ):
        build_dataset("market1501", root=tmp_path)


def test_nonexistent_root(tmp_path):
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        build_dataset("market1501", root=tmp_path / "nope")


def test_unparseable_file_name_raises_with_its_path(market):
    bad = market / "query" / "IMG_1234.jpg"
    _write_jpeg(bad)
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("market1501", root=market)
    assert str(bad) in str(info.value)
    assert "0002_c1s1_000451_03.jpg" in str(info.value)  # shows the expected form


def test_camera_outside_range_raises(market):
    bad = market / "bounding_box_test" / "0002_c7s1_000451_03.jpg"
    _write_jpeg(bad)
    with pytest.raises(DatasetLayoutError, match=r"camera c7 in .* outside 1\.\.6"):
        build_dataset("market1501", root=market)


def test_stray_non_image_file_warns_and_is_skipped(market):
    (market / "bounding_box_test" / "Thumbs.db").write_bytes(b"\x00\x01junk")
    (market / "bounding_box_test" / "subdir").mkdir()  # folders are ignored silently
    with pytest.warns(UserWarning, match=r"skipping 1 non-image file\(s\): .*Thumbs\.db"):
        ds = build_dataset("market1501", root=market)
    assert len(ds.gallery) == 3
    assert all(not r.path.endswith("Thumbs.db") for r in ds.gallery)


def test_list_images_warning_lists_at_most_three_files(tmp_path):
    for name in ("a.txt", "b.txt", "c.txt", "d.txt", "e.txt"):
        (tmp_path / name).write_text("x")
    _write_jpeg(tmp_path / "z.JPG")  # extension match is case-insensitive
    Image.new("RGB", (4, 4)).save(tmp_path / "y.png")
    with pytest.warns(UserWarning) as record:
        images = list_images(tmp_path)
    assert images == [tmp_path / "y.png", tmp_path / "z.JPG"]
    (warning,) = record
    text = str(warning.message)
    assert text.startswith("skipping 5 non-image file(s): ")
    assert text.endswith("c.txt and 2 more")
    assert "d.txt" not in text


def test_clean_folder_does_not_warn(market):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_dataset("market1501", root=market)


def test_compare_with_published_reports_partial_copy(market):
    messages = Market1501(market).compare_with_published()
    assert messages == [
        "train: found 5 images / 3 identities, the published market1501 has 12936 / 751 "
        "(a partial copy?)",
        "query: found 2 images / 2 identities, the published market1501 has 3368 / 750 "
        "(a partial copy?)",
        "gallery: found 3 images / 3 identities, the published market1501 has 15913 / 751 "
        "(a partial copy?)",
    ]


def test_synthetic_name_loads_the_same_layout(market):
    market_ds = build_dataset("market1501", root=market)
    synth = build_dataset("synthetic", root=market)
    assert synth.name == "synthetic"
    assert (synth.train, synth.query, synth.gallery) == (
        market_ds.train,
        market_ds.query,
        market_ds.gallery,
    )
    assert SyntheticReID(market).compare_with_published() == []


def test_synthetic_root_may_be_parent_and_allows_more_cameras(tmp_path):
    make_market(
        tmp_path / "synthetic",
        train=["0001_c9s1_000001_01.jpg", "0003_c12s1_000002_01.jpg"],
        query=["0005_c1s1_000003_01.jpg"],
        gallery=["0005_c10s1_000004_01.jpg"],
    )
    ds = build_dataset("synthetic", root=tmp_path)
    assert ds.root == str(tmp_path / "synthetic")
    assert [(r.pid, r.camid) for r in ds.train] == [(0, 8), (1, 11)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(5, 9)]
    with pytest.raises(DatasetLayoutError, match=r"camera c9 in .*0001_c9s1_000001_01\.jpg"):
        build_dataset("market1501", root=tmp_path / "synthetic")


def test_incomplete_standard_sub_folder_names_only_the_missing_folder(tmp_path):
    dataset = make_market(tmp_path / "Market-1501-v15.09.15")
    for path in (dataset / "query").iterdir():
        path.unlink()
    (dataset / "query").rmdir()
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("market1501", root=tmp_path)
    message = str(info.value).split("Expected layout")[0]
    assert f"{dataset} is missing query " in message
    assert "bounding_box_train" not in message
