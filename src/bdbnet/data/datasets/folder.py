"""A user's own data: one sub-folder per identity in ``train/``, ``query/`` and ``gallery/``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from bdbnet.data.datasets.base import (
    IMAGE_EXTENSIONS,
    DatasetLayoutError,
    ReIDDataset,
    _warn_skipped,
    _warn_stray,
    is_broken_link,
    list_images,
)
from bdbnet.data.records import DatasetSplits, ImageRecord, relabel
from bdbnet.data.registry import register_dataset

# "c<N>" as a whole token start: "0002_c1s1_000451_03.jpg", "c3-0001.png" -> camera N.
_CAMERA = re.compile(r"(?<![A-Za-z0-9])c(\d+)")


def _number(names: Iterable[str]) -> dict[str, int]:
    """Identity folder names -> pids: the integers themselves when every name is one, else the
    position in sorted order."""
    unique = set(names)
    if all(name.isdigit() for name in unique):
        return {name: int(name) for name in unique}
    return {name: i for i, name in enumerate(sorted(unique))}


def parse_camera(filename: str) -> int | None:
    """The 1-based camera of a file name holding ``c<N>`` (after ``_``, ``-``, ``.``, a space or
    at the start), else None."""
    match = _CAMERA.search(Path(filename).stem)
    return int(match.group(1)) if match else None


@register_dataset("folder")
class ImageFolderReID(ReIDDataset):
    """Your own data: train/<id>/*, query/<id>/*, gallery/<id>/* (camera from c<N> in names).

    Every sub-folder is one identity. When all query/gallery folder names are integers they are
    the pids; otherwise the names are numbered in sorted order, so that a query and a gallery
    folder with the same name share a pid (``splits.extra["id_names"]`` maps pids back to
    names). Train identities are relabelled to ``0..N-1`` (in numeric order for integer names).

    Cameras: a file name containing ``c<N>`` (e.g. ``0001_c2_0001.jpg``) is camera N. When a
    name has no camera, the image gets a camera of its own (a unique id above every parsed
    camera), so the re-ID protocol's same-identity-same-camera filter can never hide a true
    match; the camera count printed for such a split is then its image count.
    """

    folder_names = ("folder",)
    required = ("train", "query", "gallery")
    layout = (
        "  <root>/train/<id>/<image>     one sub-folder per identity (jpg, png, ...)\n"
        "  <root>/query/<id>/<image>\n"
        "  <root>/gallery/<id>/<image>\n"
        "  camera from 'c<N>' in the file name (0001_c2_0001.jpg -> camera 2); without it every\n"
        "  image is its own camera, so the same-camera filter never hides a true match"
    )

    def load(self) -> DatasetSplits:
        raw = {split: self.scan(self.root / split) for split in ("train", "query", "gallery")}
        train_pid = _number(n for n, _ in raw["train"])
        test_pid = _number(n for split in ("query", "gallery") for n, _ in raw[split])

        parsed = [parse_camera(path.name) for split in raw.values() for _, path in split]
        next_camera = max((c for c in parsed if c is not None), default=0)
        records: dict[str, list[ImageRecord]] = {}
        for split, items in raw.items():
            records[split] = []
            for name, path in items:
                camera = parse_camera(path.name)
                if camera is None:
                    next_camera += 1
                    camera = next_camera
                pid = train_pid[name] if split == "train" else test_pid[name]
                records[split].append(ImageRecord(str(path), pid, camera - 1))
        extra = {"id_names": {pid: name for name, pid in test_pid.items()}}
        return DatasetSplits(
            self.name,
            str(self.root),
            relabel(records["train"]),
            records["query"],
            records["gallery"],
            task="reid",
            extra=extra,
        )

    def scan(self, folder: Path) -> list[tuple[str, Path]]:
        """``(identity folder name, image path)`` for every image, sorted."""
        items, loose_images, stray, broken = [], [], [], []
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if is_broken_link(entry):
                broken.append(Path(entry.path))
            elif entry.is_dir():
                items += [(entry.name, path) for path in list_images(Path(entry.path))]
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                loose_images.append(entry.path)
            else:
                stray.append(Path(entry.path))
        _warn_stray(stray)
        _warn_skipped(broken, "broken symbolic link(s)")
        if loose_images:
            raise DatasetLayoutError(
                f"{self.name}: {loose_images[0]} is not inside an identity folder; expected "
                f"{folder}/<id>/<image>. Expected layout:\n{self.layout}"
            )
        return items
