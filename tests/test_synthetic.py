"""The synthetic Market-1501-style dataset: layout, protocol invariants, determinism, siblings."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bdbnet.data import build_dataset
from bdbnet.data.synthetic import (
    DETAILS,
    SyntheticSummary,
    generate_synthetic_reid,
    render_person,
    sample_camera_styles,
    sample_identities,
)

NAME = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")
DIRS = ("bounding_box_train", "query", "bounding_box_test")
SMALL = dict(train_ids=12, test_ids=10, cameras=6, distractors=15, junk=8, workers=1)


def _files(root: Path, folder: str) -> list[Path]:
    return sorted((root / folder).iterdir())


def _parse(path: Path) -> tuple[int, int]:
    m = NAME.match(path.name)
    assert m, path.name
    return int(m.group(1)), int(m.group(2))


def _hashes(root: Path) -> dict[str, str]:
    return {
        f"{d}/{p.name}": hashlib.sha1(p.read_bytes()).hexdigest()
        for d in DIRS
        for p in _files(root, d)
    }


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
        for p in _files(root, d):
            assert NAME.match(p.name), p.name
            assert 1 <= _parse(p)[1] <= 6
    assert len(_files(root, "bounding_box_train")) == s.train.images
    assert len(_files(root, "query")) == s.query.images
    assert len(_files(root, "bounding_box_test")) == s.gallery.images
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
    train = {_parse(p)[0] for p in _files(root, "bounding_box_train")}
    query = {_parse(p)[0] for p in _files(root, "query")}
    gallery = [_parse(p)[0] for p in _files(root, "bounding_box_test")]
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
    for p in _files(root, "query"):
        pid, cam = _parse(p)
        q_cams[pid].append(cam)
    for p in _files(root, "bounding_box_test"):
        pid, cam = _parse(p)
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
        for p in _files(root, d)[:20]:
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
    with Image.open(_files(tmp_path, "query")[0]) as im:
        assert im.size == (40, 96)
    assert {_parse(p)[1] for d in DIRS for p in _files(tmp_path, d)} <= {1, 2, 3}
    assert s.cameras == 3


def test_same_seed_same_bytes_any_worker_count(
    dataset: tuple[Path, SyntheticSummary], tmp_path: Path
) -> None:
    root, _ = dataset
    generate_synthetic_reid(tmp_path / "again", seed=0, **{**SMALL, "workers": 2})
    assert _hashes(tmp_path / "again") == _hashes(root)
    generate_synthetic_reid(tmp_path / "other", seed=1, **SMALL)
    other = _hashes(tmp_path / "other")
    assert other != _hashes(root)
    assert set(other.values()).isdisjoint(_hashes(root).values())


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
    assert len(_files(root, "bounding_box_train")) == s.train.images  # no stale files
    (root / "synthetic_meta.json").unlink()  # now it looks like someone's real dataset
    with pytest.raises(FileExistsError):
        generate_synthetic_reid(root, train_ids=2, test_ids=2, workers=1, overwrite=True)


def test_interrupted_run_can_be_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bdbnet.data.synthetic as synthetic

    real = synthetic._render_jobs

    def crash_after_some(*args, **kwargs):  # type: ignore[no-untyped-def]
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "_render_jobs", crash_after_some)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic_reid(tmp_path, train_ids=8, test_ids=2, workers=1)
    meta = json.loads((tmp_path / "synthetic_meta.json").read_text())
    assert meta["complete"] is False and "params" not in meta
    monkeypatch.setattr(synthetic, "_render_jobs", real)
    s = generate_synthetic_reid(tmp_path, train_ids=8, test_ids=2, workers=1, overwrite=True)
    assert len(_files(tmp_path, "bounding_box_train")) == s.train.images


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


def test_siblings_share_globals_and_differ_only_in_local_details() -> None:
    people = sample_identities(200, seed=3, sibling_fraction=0.4)
    assert people == sample_identities(200, seed=3, sibling_fraction=0.4)
    groups: dict[int, list] = defaultdict(list)
    for p in people:
        groups[p.group].append(p)
    siblings = [g for g in groups.values() if len(g) > 1]
    assert sum(len(g) for g in siblings) == 80
    assert {len(g) for g in siblings} <= {2, 3}
    for g in siblings:
        varied = {g[0].local_differences(g[1])}
        for a, b in itertools.combinations(g, 2):
            assert a.global_attrs == b.global_attrs
            diff = a.local_differences(b)
            assert 1 <= len(diff) <= 2 and set(diff) <= set(DETAILS)
            varied.add(diff)
        assert len(varied) == 1, "a group varies the same details in every member"
    # singletons are independent draws: their global appearance is not shared by construction
    singles = [g[0] for g in groups.values() if len(g) == 1]
    assert len({p.global_attrs for p in singles}) == len(singles)
    none = sample_identities(50, seed=0, sibling_fraction=0.0)
    assert len({p.group for p in none}) == 50


def test_sibling_images_differ_only_in_a_small_region() -> None:
    """Same pose, same camera: the pixels that change are the local detail, nothing global."""
    people = sample_identities(60, seed=5)
    groups: dict[int, list] = defaultdict(list)
    for p in people:
        groups[p.group].append(p)
    pairs = [g[:2] for g in groups.values() if len(g) > 1]
    assert pairs
    for a, b in pairs:
        changed = []
        for s in range(6):
            ia = render_person(a, s % 6, image_seed=s).astype(np.int16)
            ib = render_person(b, s % 6, image_seed=s).astype(np.int16)
            changed.append(float((np.abs(ia - ib).max(axis=-1) > 40).mean()))
        assert max(changed) > 0.002, a.local_differences(b)
        assert max(changed) < 0.15


def test_render_person_and_camera_styles() -> None:
    person = sample_identities(1, seed=0)[0]
    img = render_person(person, 2, image_seed=7, height=64, width=32)
    assert img.shape == (64, 32, 3) and img.dtype == np.uint8
    assert np.array_equal(img, render_person(person, 2, image_seed=7, height=64, width=32))
    assert render_person(None, 0).shape == (128, 64, 3)
    assert render_person(person, 0, junk=True, image_seed=1).shape == (128, 64, 3)
    styles = sample_camera_styles(6, seed=0)
    assert [c.index for c in styles] == list(range(6))
    assert len({(c.gain, c.cast) for c in styles}) == 6
    with pytest.raises(ValueError):
        render_person(person, 6)


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
