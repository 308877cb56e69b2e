"""Synthetic domains: domain 0 is the original generator, the others shift the images as stated
(darker/brighter, warm/cold cast, low resolution, viewpoints) and show other people."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic_helpers import SMALL, hashes, parse

from bdbnet.data import build_dataset
from bdbnet.data.synthetic import (
    DOMAINS,
    Domain,
    SyntheticSummary,
    generate_synthetic_reid,
    get_domain,
    render_person,
    sample_camera_styles,
    sample_identities,
)
from bdbnet.data.synthetic import write as write_module
from bdbnet.data.synthetic.render import Renderer

TINY = dict(train_ids=6, test_ids=4, cameras=6, distractors=2, junk=2, workers=1)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, SyntheticSummary]]:
    """The same tiny dataset (seed 0) in every domain."""
    base = tmp_path_factory.mktemp("domains")
    return {
        d: (base / f"d{d}", generate_synthetic_reid(base / f"d{d}", domain=d, **TINY))
        for d in DOMAINS
    }


def _train_pixels(root: Path) -> np.ndarray:
    paths = sorted((root / "bounding_box_train").iterdir())
    return np.stack([np.asarray(Image.open(p), dtype=np.float32) for p in paths])


def _stats(root: Path) -> tuple[float, float, float]:
    """Mean grey level, R/B ratio of the channel means, and the mean absolute horizontal pixel
    difference relative to the mean grey level (fine detail, independent of the gain)."""
    a = _train_pixels(root)
    channels = a.mean(axis=(0, 1, 2))
    detail = float(np.abs(np.diff(a, axis=2)).mean() / a.mean())
    return float(a.mean()), float(channels[0] / channels[2]), detail


def test_domain_0_is_the_original_generator(
    datasets: dict[int, tuple[Path, SyntheticSummary]], tmp_path: Path
) -> None:
    root, summary = datasets[0]
    generate_synthetic_reid(tmp_path / "default", **TINY)  # no domain argument
    assert hashes(tmp_path / "default") == hashes(root)
    assert summary.domain == 0 and str(summary).startswith("synthetic re-ID dataset at ")
    # the camera draws of the generator before domains existed, in the same order
    styles = sample_camera_styles(6, seed=0)
    assert styles == sample_camera_styles(6, seed=0, domain=0)
    assert [c.background for c in styles] == ["park", "street", "plaza", "street", "indoor", "park"]
    assert [c.gain for c in styles] == [1.1054, 0.8499, 1.0094, 0.8718, 1.1007, 0.9199]
    assert styles[0].cast == (1.2001, 0.867, 0.9329)
    assert [c.back_view for c in styles] == [0.417, 0.3, 0.284, 0.301, 0.328, 0.185]
    assert Renderer(0, 6, 128, 64, 0.3).h == 128


@pytest.mark.parametrize("domain", [1, 2])
def test_other_domains_keep_the_layout(
    datasets: dict[int, tuple[Path, SyntheticSummary]], domain: int
) -> None:
    root, s = datasets[domain]
    assert (s.train.identities, s.query.identities, s.gallery.identities) == (6, 4, 4)
    assert (s.distractors, s.junk) == (2, 2)
    ds = build_dataset("market1501", root=str(root))
    assert len(ds.train) == s.train.images >= 6 * 2 * 2
    assert len(ds.query) == s.query.images and len(ds.gallery) == s.gallery.images - s.junk
    assert {r.pid for r in ds.gallery} >= {0} | {r.pid for r in ds.query}
    assert {parse(p)[0] for p in (root / "bounding_box_train").iterdir()} == set(range(1, 7))
    for p in (root / "bounding_box_train").iterdir():
        assert Image.open(p).size == (64, 128)
    # other images than domain 0's
    assert set(hashes(root).values()).isdisjoint(hashes(datasets[0][0]).values())


def test_other_domains_show_other_people(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[list] = []

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        people = sample_identities(*args, **kwargs)
        drawn.append(people)
        return people

    monkeypatch.setattr(write_module, "sample_identities", spy)
    tiny = {**TINY, "train_ids": 4, "test_ids": 2}
    generate_synthetic_reid(tmp_path / "d0", **tiny)
    generate_synthetic_reid(tmp_path / "d1", domain=1, **tiny)
    train0, test0, *_ = drawn[:4]
    train1, test1, *_ = drawn[4:]
    assert len(train1) == 4 and len(test1) == 2
    # every identity of domain 1 differs from every one of domain 0 (globals and details)
    for a in train1 + test1:
        assert all(a.global_attrs != b.global_attrs for b in train0 + test0)


def test_shifts_are_visible_in_the_pixels(
    datasets: dict[int, tuple[Path, SyntheticSummary]],
) -> None:
    bright0, rb0, detail0 = _stats(datasets[0][0])
    bright1, rb1, detail1 = _stats(datasets[1][0])
    bright2, rb2, detail2 = _stats(datasets[2][0])
    # domain 1: dim, warm, half resolution
    assert bright1 < bright0 - 20
    assert rb1 > rb0 + 0.2
    assert detail1 < 0.8 * detail0
    # domain 2: bright, cold, 3/4 resolution
    assert bright2 > bright0 + 15
    assert rb2 < rb0 - 0.05
    assert detail2 < 0.9 * detail0


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_camera_styles_follow_the_table(domain: int) -> None:
    d = get_domain(domain)
    styles = sample_camera_styles(8, seed=3, domain=domain)
    assert {c.background for c in styles} == set(d.scenes)
    assert all(d.gain[0] <= c.gain <= d.gain[1] for c in styles)
    assert all(d.back_view[0] <= c.back_view <= d.back_view[1] for c in styles)
    r = Renderer(0, 6, 128, 64, 0.3, domain)
    assert (r.h, r.w) == (round(128 * d.resolution), round(64 * d.resolution))
    person = sample_identities(1, seed=0)[0]
    img = render_person(person, 1, image_seed=3, domain=domain)
    assert img.shape == (128, 64, 3) and img.dtype == np.uint8
    assert np.array_equal(img, render_person(person, 1, image_seed=3, domain=domain))


def test_back_views_follow_the_domain() -> None:
    """Domain 1 sees people mostly from behind, domain 2 almost only from the front."""
    means = {d: np.mean([c.back_view for c in sample_camera_styles(9, 0, d)]) for d in DOMAINS}
    assert means[1] > 0.55 > means[0] > means[2]


def test_meta_file_records_the_domain(datasets: dict[int, tuple[Path, SyntheticSummary]]) -> None:
    for d, (root, summary) in datasets.items():
        meta = json.loads((root / "synthetic_meta.json").read_text())
        assert meta["params"]["domain"] == d
        assert meta["domain"] == DOMAINS[d].to_dict()
        assert meta["domain"]["description"] == summary.domain_description
        assert "domain" not in meta["counts"] and "domain_description" not in meta["counts"]
    root, summary = datasets[1]
    assert str(summary).startswith("synthetic re-ID dataset (domain 1) at ")
    assert json.loads((root / "synthetic_meta.json").read_text())["domain"]["resolution"] == 0.5


def test_unknown_domain_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    message = r"unknown synthetic domain 7; the known domains are 0, 1, 2"
    with pytest.raises(ValueError, match=message):
        generate_synthetic_reid(tmp_path / "x", domain=7, **TINY)
    assert not (tmp_path / "x").exists()  # refused before anything is written
    with pytest.raises(ValueError, match=message):
        get_domain(7)
    with pytest.raises(ValueError, match=message):
        sample_camera_styles(6, 0, domain=7)
    with pytest.raises(ValueError, match=message):
        render_person(None, 0, domain=7)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(scenes=("street", "beach")),
        dict(scenes=()),
        dict(gain=(1.2, 0.8)),
        dict(back_view=(0.5, 1.5)),
        dict(cast_bias=(1.0, 0.0, 1.0)),
        dict(resolution=0.0),
        dict(resolution=1.5),
    ],
)
def test_domain_values_are_checked(kwargs: dict) -> None:
    spec = {**DOMAINS[1].__dict__, **kwargs}
    with pytest.raises(ValueError):
        Domain(**spec)


def test_other_domain_same_bytes_any_worker_count(tmp_path: Path) -> None:
    """The worker processes render the requested domain, not domain 0."""
    generate_synthetic_reid(tmp_path / "one", seed=0, domain=2, **SMALL)
    generate_synthetic_reid(tmp_path / "two", seed=0, domain=2, **{**SMALL, "workers": 2})
    assert hashes(tmp_path / "two") == hashes(tmp_path / "one")
