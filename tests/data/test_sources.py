"""Several training sources (``data.sources``): identities and cameras kept apart by offsets,
each record's source remembered, ``combine_all`` adding the test identities, and one-line
refusals of sources that cannot be combined."""

from __future__ import annotations

import shutil

import pytest

from bdbnet.config import load_config
from bdbnet.data import build_dataset
from bdbnet.data.sources import build_sources, build_targets, parse_sources
from bdbnet.errors import ConfigError, DataError


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
    root = str(tiny_synthetic)
    syn = f"synthetic={root}"
    cases = [
        ([syn, "nope=/x"], "data.sources: unknown dataset 'nope'; known: "),
        ([syn, syn], f"data.sources: synthetic={root} is given twice"),
        (["synthetic"], "data.sources: synthetic has no root: write synthetic=ROOT or give --root"),
    ]
    for sources, message in cases:
        with pytest.raises(ConfigError) as err:
            parse_sources(sources, "")
        assert message in str(err.value)
    # Folders are compared where the loaders found them (a root may be a parent of several).
    outer = tmp_path / "outer"
    shutil.copytree(tiny_synthetic, outer)
    shutil.copytree(tiny_synthetic, outer / "nested" / "synthetic")
    cases = [
        (
            [syn, f"market1501={root}"],
            f"data.sources: market1501={root} and synthetic={root} are the same dataset folder",
        ),
        ([f"synthetic={outer}", f"synthetic={outer / 'nested'}"], "overlap (one holds the other)"),
    ]
    for sources, message in cases:
        with pytest.raises(ConfigError) as err:
            build_sources(data_config(*sources))
        assert message in str(err.value)


def test_one_parent_folder_holds_several_sources(tiny_synthetic, second_synthetic, tmp_path):
    """``--dataset synthetic --dataset market1501 --root PARENT``: each loader finds its own
    standard folder under the one root."""
    shutil.copytree(tiny_synthetic, tmp_path / "synthetic")
    shutil.copytree(second_synthetic, tmp_path / "Market-1501-v15.09.15")
    data = data_config("synthetic", "market1501")
    data.root = str(tmp_path)
    splits = build_sources(data)
    assert splits.num_train_pids == 8 + 5
    assert {r.source for r in splits.train} == {f"synthetic={tmp_path}", f"market1501={tmp_path}"}


def test_eval_targets_are_named_and_checked(tiny_synthetic, second_synthetic, tmp_path):
    trained = build_dataset("synthetic", tiny_synthetic)
    data = data_config(f"synthetic={tiny_synthetic}")
    own = build_targets(data, [], trained)
    assert [(t.label, t.splits) for t in own] == [("synthetic", trained)]
    a, b = f"synthetic={tiny_synthetic}", f"synthetic={second_synthetic}"
    targets = build_targets(data, [b, a], trained)
    assert [t.label for t in targets] == [b, a]  # one loader twice: NAME=ROOT
    assert targets[0].splits.query == build_dataset("synthetic", second_synthetic).query
    data.root = str(second_synthetic)
    assert [t.label for t in build_targets(data, ["synthetic"], trained)] == ["synthetic"]
    no_query = tmp_path / "no_query"
    shutil.copytree(tiny_synthetic, no_query)
    for image in (no_query / "query").iterdir():
        image.unlink()
    with pytest.raises(ConfigError) as err:
        build_targets(data, [f"synthetic={no_query}"], trained)
    assert str(err.value) == (
        f"eval.targets: synthetic at {no_query} has no test split (no query images) to evaluate on"
    )
    with pytest.raises(DataError) as err:
        build_targets(data, [f"market1501={tmp_path / 'missing'}"], trained)
    assert str(err.value).startswith("eval.targets: market1501: root ")
    assert "--eval-dataset market1501=ROOT" in str(err.value)
