"""The synthetic Market-1501-style dataset on disk: layout, protocol invariants, overwrites."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from PIL import Image
from synthetic_helpers import DIRS, NAME, SMALL, files, parse

from bdbnet.data import build_dataset
from bdbnet.data.synthetic import SyntheticSummary, generate_synthetic_reid


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SyntheticSummary]:
    root = tmp_path_factory.mktemp("synth") / "market"
    summary = generate_synthetic_reid(root, seed=0, **SMALL)
    return root, summary


def test_layout_names_and_counts(dataset: tuple[Path, SyntheticSummary]) -> None:
    root, s = dataset
    assert s.root == root
    for d in DIRS:
        assert (root / d).is_dir()
        for p in files(root, d):
            assert NAME.match(p.name), p.name
            assert 1 <= parse(p)[1] <= 6
    assert len(files(root, "bounding_box_train")) == s.train.images
    assert len(files(root, "query")) == s.query.images
    assert len(files(root, "bounding_box_test")) == s.gallery.images
    assert (s.train.identities, s.query.identities, s.gallery.identities) == (12, 10, 10)
    assert (s.distractors, s.junk) == (15, 8)
    assert s.total_images == s.train.images + s.query.images + s.gallery.images
    meta = json.loads((root / "synthetic_meta.json").read_text())
    assert meta["layout"] == "market1501" and meta["complete"] is True
    assert meta["counts"]["train"] == {"images": s.train.images, "identities": 12}
    assert meta["params"]["seed"] == 0
    # Market-like density: every identity 2-6 cameras x 2-4 images
    assert 12 * 4 <= s.train.images <= 12 * 24


def test_pids_splits_and_special_ids(dataset: tuple[Path, SyntheticSummary]) -> None:
    root, s = dataset
    train = {parse(p)[0] for p in files(root, "bounding_box_train")}
    query = {parse(p)[0] for p in files(root, "query")}
    gallery = [parse(p)[0] for p in files(root, "bounding_box_test")]
    assert train == set(range(1, 13))
    assert query == set(range(13, 23))
    assert train.isdisjoint(query)
    assert set(gallery) == query | {0, -1}
    assert gallery.count(0) == s.distractors
    assert gallery.count(-1) == s.junk


def test_one_query_per_camera_and_cross_camera_match(
    dataset: tuple[Path, SyntheticSummary],
) -> None:
    root, _ = dataset
    q_cams: dict[int, list[int]] = defaultdict(list)
    g_cams: dict[int, set[int]] = defaultdict(set)
    for p in files(root, "query"):
        pid, cam = parse(p)
        q_cams[pid].append(cam)
    for p in files(root, "bounding_box_test"):
        pid, cam = parse(p)
        g_cams[pid].add(cam)
    for pid, cams in q_cams.items():
        assert len(cams) == len(set(cams)), "more than one query in a camera"
        assert set(cams) == g_cams[pid], "a camera of the identity has no query"
        assert len(cams) >= 2
        for cam in cams:
            assert g_cams[pid] - {cam}, f"query {pid} c{cam} has no cross-camera match"


def test_image_size_and_mode(dataset: tuple[Path, SyntheticSummary], tmp_path: Path) -> None:
    root, _ = dataset
    for d in DIRS:
        for p in files(root, d)[:20]:
            with Image.open(p) as im:
                assert (im.size, im.mode, im.format) == ((64, 128), "RGB", "JPEG")
    s = generate_synthetic_reid(
        tmp_path,
        train_ids=2,
        test_ids=2,
        cameras=3,
        distractors=1,
        junk=1,
        height=96,
        width=40,
        workers=1,
    )
    with Image.open(files(tmp_path, "query")[0]) as im:
        assert im.size == (40, 96)
    assert {parse(p)[1] for d in DIRS for p in files(tmp_path, d)} <= {1, 2, 3}
    assert s.cameras == 3


def test_overwrite_is_explicit_and_only_for_synthetic_roots(
    dataset: tuple[Path, SyntheticSummary], tmp_path: Path
) -> None:
    root = tmp_path / "d"
    generate_synthetic_reid(root, train_ids=2, test_ids=2, distractors=0, junk=0, workers=1)
    with pytest.raises(FileExistsError):
        generate_synthetic_reid(root, train_ids=2, test_ids=2, workers=1)
    s = generate_synthetic_reid(
        root, train_ids=3, test_ids=2, distractors=0, junk=0, workers=1, overwrite=True
    )
    assert len(files(root, "bounding_box_train")) == s.train.images  # no stale files
    (root / "synthetic_meta.json").unlink()  # now it looks like someone's real dataset
    with pytest.raises(FileExistsError):
        generate_synthetic_reid(root, train_ids=2, test_ids=2, workers=1, overwrite=True)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(cameras=1),
        dict(cameras=10),
        dict(train_ids=0),
        dict(occlusion=1.5),
        dict(images_per_camera=(3, 2)),
        dict(junk=-1),
    ],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        generate_synthetic_reid(tmp_path, **{"train_ids": 2, "test_ids": 2, **kwargs})


def test_market1501_loader_reads_it(dataset: tuple[Path, SyntheticSummary]) -> None:
    root, s = dataset
    ds = build_dataset("market1501", root=str(root))
    assert len(ds.train) == s.train.images
    assert sorted({r.pid for r in ds.train}) == list(range(s.train.identities))
    assert len(ds.query) == s.query.images
    assert len(ds.gallery) == s.gallery.images - s.junk  # junk (pid -1) is dropped
    assert {r.pid for r in ds.gallery} >= {0} | {r.pid for r in ds.query}
    assert {r.camid for r in [*ds.train, *ds.query, *ds.gallery]} <= set(range(6))
    same = build_dataset("synthetic", root=str(root))
    assert (len(same.train), len(same.query), len(same.gallery)) == (
        len(ds.train),
        len(ds.query),
        len(ds.gallery),
    )
