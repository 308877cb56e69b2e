"""Helpers of the synthetic-dataset tests: file names, folders and hashes of a generated tree."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

NAME = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")
DIRS = ("bounding_box_train", "query", "bounding_box_test")
SMALL = dict(train_ids=12, test_ids=10, cameras=6, distractors=15, junk=8, workers=1)


def files(root: Path, folder: str) -> list[Path]:
    return sorted((root / folder).iterdir())


def parse(path: Path) -> tuple[int, int]:
    m = NAME.match(path.name)
    assert m, path.name
    return int(m.group(1)), int(m.group(2))


def hashes(root: Path) -> dict[str, str]:
    return {
        f"{d}/{p.name}": hashlib.sha1(p.read_bytes()).hexdigest()
        for d in DIRS
        for p in files(root, d)
    }
