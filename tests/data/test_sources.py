"""Several training sources (``data.sources``): identities and cameras kept apart by offsets,
each record's source remembered, ``combine_all`` adding the test identities, and one-line
refusals of sources that cannot be combined."""

from __future__ import annotations

import pytest

from bdbnet.config import load_config
from bdbnet.data import build_dataset
from bdbnet.data.sources import build_sources, parse_sources
from bdbnet.errors import ConfigError


@pytest.fixture(scope="module")
def second_synthetic(tmp_path_factory):
    """Another synthetic camera network: the same loader at another root, other images."""
    from bdbnet.data.synthetic import generate_synthetic_reid

    root = tmp_path_factory.mktemp("tiny_b") / "synthetic"
    generate_synthetic_reid(root, train_ids=5, test_ids=4, seed=1, distractors=2, junk=1)
    return root


def data_config(*sources: str, combine_all: bool = False):
    listed = "[" + ", ".join(f'"{s}"' for s in sources) + "]"
    overrides = [f"data.sources={listed}", f"data.combine_all={str(combine_all).lower()}"]
    return load_config("synthetic-demo", None, overrides).data


def test_two_sources_train_on_the_union_with_their_labels_apart(tiny_synthetic, second_synthetic):
    a, b = build_dataset("synthetic", tiny_synthetic), build_dataset("synthetic", second_synthetic)
    splits = build_sources(
        data_config(f"synthetic={tiny_synthetic}", f"synthetic={second_synthetic}")
    )
    assert len(splits.train) == len(a.train) + len(b.train)
    assert splits.num_train_pids == a.num_train_pids + b.num_train_pids  # 8 + 5, none merged
    assert sorted({r.pid for r in splits.train}) == list(range(13))
    first = [r for r in splits.train if r.source == f"synthetic={tiny_synthetic}"]
    second = [r for r in splits.train if r.source == f"synthetic={second_synthetic}"]
    assert len(first) == len(a.train) and len(second) == len(b.train)
    cams_a = {r.camid for r in first}
    assert {r.camid for r in second} == {c + max(cams_a) + 1 for c in {r.camid for r in b.train}}
    assert {r.pid for r in first} == set(range(8)) and {r.pid for r in second} == set(range(8, 13))
    assert [r.path for r in first] == [r.path for r in a.train]  # nothing lost or reordered
    assert splits.query == a.query and splits.gallery == a.gallery  # tested on the first source
    assert splits.name == "synthetic+synthetic"


def test_combine_all_trains_on_the_test_identities_but_not_junk(tiny_synthetic):
    a = build_dataset("synthetic", tiny_synthetic)
    splits = build_sources(data_config(f"synthetic={tiny_synthetic}", combine_all=True))
    test = [r for r in (*a.query, *a.gallery) if r.pid > 0]
    assert len(splits.train) == len(a.train) + len(test)
    assert splits.num_train_pids == a.num_train_pids + len({r.pid for r in test})
    assert not any(r.pid < 0 for r in splits.train)  # junk (-1) and distractors (0) left out


def test_sources_that_cannot_be_combined_are_refused(tiny_synthetic, tmp_path):
    root, inner = str(tiny_synthetic), str(tmp_path / "inner")
    syn = f"synthetic={root}"
    cases = [
        ([syn, "nope=/x"], "data.sources: unknown dataset 'nope'; known: "),
        ([syn, syn], f"data.sources: synthetic={root} is given twice"),
        ([syn, f"market1501={root}"], f"market1501={root} is also the root of synthetic"),
        ([f"synthetic={tmp_path}", f"synthetic={inner}"], "overlap (one holds the other)"),
        (["synthetic"], "data.sources: synthetic has no root: write synthetic=ROOT or give --root"),
    ]
    for sources, message in cases:
        with pytest.raises(ConfigError) as err:
            parse_sources(sources, "")
        assert message in str(err.value)
