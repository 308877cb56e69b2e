"""Base class for dataset loaders: root resolution, layout validation, file listing."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

from bdbnet.data.records import DatasetSplits, ImageRecord, SplitStats, relabel
from bdbnet.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class DatasetLayoutError(DataError):
    """The files on disk do not have the layout the loader expects."""


class ReIDDataset:
    """A dataset on disk, loaded into :class:`DatasetSplits`.

    Subclasses set ``folder_names`` (standard names of the dataset folder, so that ``root`` may
    point at the folder or at its parent), ``required`` (paths that must exist inside it; an entry
    ``"a|b"`` is satisfied by either path), ``layout`` (a human description used in error
    messages), optionally ``expected_stats`` (published counts, used to flag partial copies) and
    ``preset`` (the recipe ``bdbnet train`` uses when no preset carries the dataset's own name),
    and implement :meth:`load`.
    """

    name: str = ""
    task: str = "reid"
    folder_names: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    layout: str = ""
    expected_stats: dict[str, SplitStats] | None = None
    preset: str | None = None

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = self.resolve_root(Path(root).expanduser())
        self.splits: DatasetSplits = self.load()

    def resolve_root(self, root: Path) -> Path:
        """Accept both the dataset folder itself and its parent with the standard name."""
        if not root.exists():
            raise DatasetLayoutError(
                f"{self.name}: root {root} does not exist. Expected layout:\n{self.layout}"
            )
        if self._has_layout(root):
            return root
        for folder in self.folder_names:
            if self._has_layout(root / folder):
                return root / folder
        # Name what is missing inside the standard sub-folder when there is one.
        present = [root / f for f in self.folder_names if (root / f).is_dir()]
        if present:
            root = present[0]
        missing = [p.replace("|", " or ") for p in self.required if not _exists(root, p)]
        raise DatasetLayoutError(
            f"{self.name}: {root} is missing {', '.join(missing)} (also looked for a sub-folder "
            f"named {' or '.join(self.folder_names) or '-'}). Expected layout:\n{self.layout}"
        )

    def _has_layout(self, root: Path) -> bool:
        return all(_exists(root, p) for p in self.required)

    def first_existing(self, *alternatives: str) -> Path:
        """The first of ``alternatives`` (paths inside the root) that exists."""
        for alternative in alternatives:
            if (self.root / alternative).exists():
                return self.root / alternative
        raise DatasetLayoutError(
            f"{self.name}: {self.root} has none of {', '.join(alternatives)}. "
            f"Expected layout:\n{self.layout}"
        )

    def load(self) -> DatasetSplits:
        raise NotImplementedError

    def compare_with_published(self) -> list[str]:
        """Differences between the loaded counts and the published statistics."""
        if not self.expected_stats:
            return []
        found = self.splits.stats()
        messages = []
        for split, expected in self.expected_stats.items():
            got = found[split]
            if (got.images, got.identities) != (expected.images, expected.identities):
                messages.append(
                    f"{split}: found {got.images} images / {got.identities} identities, the "
                    f"published {self.name} has {expected.images} / {expected.identities} "
                    "(a partial copy?)"
                )
        return messages


def _exists(root: Path, entry: str) -> bool:
    return any((root / alternative).exists() for alternative in entry.split("|"))


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder (sorted, non-recursive); stray non-image files and broken (or
    self-looping) symbolic links are skipped with a warning naming them, so that e.g. a
    ``Thumbs.db`` does not abort loading and nothing disappears silently."""
    images, stray, broken = [], [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if is_broken_link(entry):
            broken.append(Path(entry.path))
            continue
        if not entry.is_file():
            continue
        (images if entry.name.lower().endswith(IMAGE_EXTENSIONS) else stray).append(
            Path(entry.path)
        )
    _warn_skipped(stray, "non-image file(s)")
    _warn_skipped(broken, "broken symbolic link(s)")
    return images


def _warn_skipped(skipped: Iterable[Path], what: str) -> None:
    skipped = list(skipped)
    if skipped:
        shown = ", ".join(str(p) for p in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        warnings.warn(f"skipping {len(skipped)} {what}: {shown}{more}", stacklevel=3)


def _warn_stray(stray: Iterable[Path]) -> None:
    _warn_skipped(stray, "non-image file(s)")


def is_broken_link(entry: os.DirEntry) -> bool:
    """A symbolic link whose target is missing or loops back on itself."""
    return entry.is_symlink() and not os.path.exists(entry.path)


# ------------------------------------------------------------------------ list-file datasets
def read_list_file(
    path: Path, dataset: str, num_fields: int, skip_lines: int = 0, example: str = ""
) -> list[tuple[int, list[str]]]:
    """Rows of a whitespace-separated list file as ``(line number, fields)``.

    Blank lines are skipped; a row with fewer than ``num_fields`` fields is an error that names
    the file, the line and (when given) an ``example`` of a valid row.
    """
    if not path.is_file():
        raise DatasetLayoutError(f"{dataset}: list file {path} does not exist")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if number <= skip_lines or not line.strip():
                continue
            fields = line.split()
            if len(fields) < num_fields:
                hint = f" (expected a line like {example!r})" if example else ""
                raise DatasetLayoutError(
                    f"{dataset}: cannot parse line {number} of {path}: {line.strip()!r}{hint}"
                )
            rows.append((number, fields))
    return rows


def parse_int(value: str, dataset: str, path: Path, line: int, what: str) -> int:
    """``int(value)`` with an error naming the list file and line."""
    try:
        return int(value)
    except ValueError:
        raise DatasetLayoutError(
            f"{dataset}: line {line} of {path}: {what} {value!r} is not an integer"
        ) from None


def check_images_exist(records: Iterable[ImageRecord], dataset: str, source: Path) -> None:
    """Raise when images named in a list file are missing on disk (a partial copy)."""
    records = list(records)
    missing = [r.path for r in records if not os.path.isfile(r.path)]
    if missing:
        shown = ", ".join(missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DatasetLayoutError(
            f"{dataset}: {len(missing)} of the {len(records)} images listed in {source} are "
            f"missing (a partial copy?): {shown}{more}"
        )


def retrieval_splits(
    dataset: ReIDDataset,
    train: list[ImageRecord],
    query: list[ImageRecord],
    gallery: list[ImageRecord] | None = None,
) -> DatasetSplits:
    """Splits of a metric-learning benchmark: train labels relabelled to ``0..N-1``, test labels
    kept. Without ``gallery`` the test split is both query and gallery (the same list object,
    which the evaluator reads as leave-one-out: each image queries all the others)."""
    return DatasetSplits(
        dataset.name,
        str(dataset.root),
        relabel(train),
        query,
        query if gallery is None else gallery,
        task="retrieval",
    )
