"""Camera styles of the synthetic dataset: one per camera, deterministic, distinct."""

from __future__ import annotations

from bdbnet.data.synthetic.cameras import sample_camera_styles


def test_camera_styles() -> None:
    styles = sample_camera_styles(6, seed=0)
    assert [c.index for c in styles] == list(range(6))
    assert len({(c.gain, c.cast) for c in styles}) == 6
