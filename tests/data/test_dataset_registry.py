import pytest

from bdbnet.data import (
    DatasetSplits,
    ImageRecord,
    ReIDDataset,
    build_dataset,
    get_dataset_class,
    list_datasets,
    register_dataset,
    registry,
)
from bdbnet.data.datasets import Market1501, SyntheticReID


@pytest.fixture
def clean_registry():
    """Restore the registry to its state before the test (built-ins imported first, so that a
    first import during the test cannot leave them out)."""
    saved = dict(registry._REGISTRY)
    yield registry._REGISTRY
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def test_builtin_datasets_are_listed_sorted():
    names = list_datasets()
    assert "market1501" in names
    assert "synthetic" in names
    assert names == sorted(names)


def test_builtin_classes_and_case_insensitive_lookup():
    assert get_dataset_class("market1501") is Market1501
    assert get_dataset_class("Market1501") is Market1501
    assert get_dataset_class("SYNTHETIC") is SyntheticReID
    assert Market1501.name == "market1501"
    assert SyntheticReID.name == "synthetic"


def _make_user_dataset():
    class IdListDataset(ReIDDataset):
        """``ids.txt``: one ``split path pid camid`` per line."""

        required = ("ids.txt",)
        layout = "  <root>/ids.txt"
        folder_names = ("id-list",)

        def load(self) -> DatasetSplits:
            splits: dict[str, list[ImageRecord]] = {"train": [], "query": [], "gallery": []}
            for line in (self.root / "ids.txt").read_text().splitlines():
                split, path, pid, camid = line.split()
                splits[split].append(ImageRecord(path, int(pid), int(camid)))
            return DatasetSplits(
                self.name, str(self.root), splits["train"], splits["query"], splits["gallery"]
            )

    return IdListDataset


def test_register_user_dataset_and_build_it(clean_registry, tmp_path):
    cls = _make_user_dataset()
    returned = register_dataset("My-IDs")(cls)
    assert returned is cls  # usable as a decorator
    assert cls.name == "my-ids"  # stored lower-case
    assert "my-ids" in list_datasets()
    assert get_dataset_class("my-ids") is cls
    assert clean_registry["my-ids"] is cls

    (tmp_path / "ids.txt").write_text(
        "train t0.jpg 4 0\ntrain t1.jpg 9 1\nquery q0.jpg 20 0\ngallery g0.jpg 20 2\n"
    )
    ds = build_dataset("MY-IDS", root=tmp_path)
    assert isinstance(ds, DatasetSplits)
    assert ds.name == "my-ids"
    assert ds.root == str(tmp_path)
    assert ds.train == [ImageRecord("t0.jpg", 4, 0), ImageRecord("t1.jpg", 9, 1)]
    assert ds.query == [ImageRecord("q0.jpg", 20, 0)]
    assert ds.gallery == [ImageRecord("g0.jpg", 20, 2)]
    assert ds.num_train_pids == 2


def test_user_dataset_root_may_be_parent_folder(clean_registry, tmp_path):
    cls = register_dataset("my-ids")(_make_user_dataset())
    (tmp_path / "id-list").mkdir()
    (tmp_path / "id-list" / "ids.txt").write_text("train a.jpg 1 0\n")
    ds = build_dataset("my-ids", root=tmp_path)
    assert ds.root == str(tmp_path / "id-list")
    assert cls(tmp_path).root == tmp_path / "id-list"


def test_registration_is_removed_by_fixture():
    # runs after the tests above (file order): the user dataset is gone again
    assert "my-ids" not in list_datasets()


def test_duplicate_name_with_another_class_is_rejected(clean_registry):
    other = _make_user_dataset()
    with pytest.raises(ValueError, match="'market1501' is already registered"):
        register_dataset("market1501")(other)
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("Market1501")(other)  # names are case-insensitive
    assert get_dataset_class("market1501") is Market1501


def test_registering_the_same_class_again_is_allowed(clean_registry):
    cls = _make_user_dataset()
    register_dataset("twice")(cls)
    assert register_dataset("twice")(cls) is cls
    assert get_dataset_class("twice") is cls


def test_unknown_name_lists_available_datasets():
    with pytest.raises(KeyError) as info:
        get_dataset_class("no-such-set")
    message = info.value.args[0]
    assert message.startswith("unknown dataset 'no-such-set'; available: ")
    assert message.endswith(", ".join(list_datasets()))
    assert "market1501" in message
    assert "synthetic" in message


def test_build_dataset_unknown_name_raises_key_error(tmp_path):
    with pytest.raises(KeyError, match="unknown dataset 'nope'"):
        build_dataset("nope", root=tmp_path)
