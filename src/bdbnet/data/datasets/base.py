"""Base class for dataset loaders: root resolution, layout validation, file listing."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

from bdbnet.data.records import DatasetSplits, SplitStats

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class DatasetLayoutError(FileNotFoundError):
    """The files on disk do not have the layout the loader expects."""


class ReIDDataset:
    """A dataset on disk, loaded into :class:`DatasetSplits`.

    Subclasses set ``folder_names`` (standard names of the dataset folder, so that ``root`` may
    point at the folder or at its parent), ``required`` (paths that must exist inside it),
    ``layout`` (a human description used in error messages), optionally ``expected_stats``
    (published counts, used to flag partial copies) and implement :meth:`load`.
    """

    name: str = ""
    task: str = "reid"
    folder_names: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    layout: str = ""
    expected_stats: dict[str, SplitStats] | None = None

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
        missing = [p for p in self.required if not (root / p).exists()]
        raise DatasetLayoutError(
            f"{self.name}: {root} is missing {', '.join(missing)} (also looked for a sub-folder "
            f"named {' or '.join(self.folder_names) or '-'}). Expected layout:\n{self.layout}"
        )

    def _has_layout(self, root: Path) -> bool:
        return all((root / p).exists() for p in self.required)

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


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder (sorted, non-recursive); stray non-image files are skipped with a
    warning so that e.g. a ``Thumbs.db`` does not abort loading."""
    images, stray = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.is_file():
            continue
        (images if entry.name.lower().endswith(IMAGE_EXTENSIONS) else stray).append(
            Path(entry.path)
        )
    _warn_stray(stray)
    return images


def _warn_stray(stray: Iterable[Path]) -> None:
    stray = list(stray)
    if stray:
        shown = ", ".join(str(p) for p in stray[:3])
        more = f" and {len(stray) - 3} more" if len(stray) > 3 else ""
        warnings.warn(f"skipping {len(stray)} non-image file(s): {shown}{more}", stacklevel=3)
