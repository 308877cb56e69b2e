"""Rendering synthetic pedestrians: previews, determinism, what siblings change in a picture."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from bdbnet.data.synthetic.attributes import sample_identities
from bdbnet.data.synthetic.render import render_person


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


def test_render_person() -> None:
    person = sample_identities(1, seed=0)[0]
    img = render_person(person, 2, image_seed=7, height=64, width=32)
    assert img.shape == (64, 32, 3) and img.dtype == np.uint8
    assert np.array_equal(img, render_person(person, 2, image_seed=7, height=64, width=32))
    assert render_person(None, 0).shape == (128, 64, 3)
    assert render_person(person, 0, junk=True, image_seed=1).shape == (128, 64, 3)
    with pytest.raises(ValueError):
        render_person(person, 6)
