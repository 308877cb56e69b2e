"""Rendering the planned images: any number of worker processes, same bytes; interruptions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_helpers import SMALL, files, hashes

from bdbnet.data.synthetic import generate_synthetic_reid


def test_same_seed_same_bytes_any_worker_count(tmp_path: Path) -> None:
    root = tmp_path / "one"
    generate_synthetic_reid(root, seed=0, **SMALL)
    generate_synthetic_reid(tmp_path / "again", seed=0, **{**SMALL, "workers": 2})
    assert hashes(tmp_path / "again") == hashes(root)
    generate_synthetic_reid(tmp_path / "other", seed=1, **SMALL)
    other = hashes(tmp_path / "other")
    assert other != hashes(root)
    assert set(other.values()).isdisjoint(hashes(root).values())


def test_interrupted_run_can_be_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bdbnet.data.synthetic import pool

    real = pool.render_jobs

    def crash_after_some(*args, **kwargs):  # type: ignore[no-untyped-def]
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(pool, "render_jobs", crash_after_some)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic_reid(tmp_path, train_ids=8, test_ids=2, workers=1)
    meta = json.loads((tmp_path / "synthetic_meta.json").read_text())
    assert meta["complete"] is False and "params" not in meta
    monkeypatch.setattr(pool, "render_jobs", real)
    s = generate_synthetic_reid(tmp_path, train_ids=8, test_ids=2, workers=1, overwrite=True)
    assert len(files(tmp_path, "bounding_box_train")) == s.train.images
