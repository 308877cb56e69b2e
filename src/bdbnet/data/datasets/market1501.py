"""Market-1501 (Zheng et al., ICCV 2015) and every dataset that shares its layout.

:class:`MarketStyleDataset` is the shared parser: three folders of images whose file names start
with ``<pid>_c<camera>``. DukeMTMC-reID, CUHK03-NP and the synthetic dataset reuse it with their
own name pattern and camera count.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from bdbnet.data.datasets.base import DatasetLayoutError, ReIDDataset, list_images
from bdbnet.data.records import DatasetSplits, ImageRecord, SplitStats, relabel
from bdbnet.data.registry import register_dataset

_MARKET_NAME = re.compile(r"^(-1|\d+)_c(\d+)")


class MarketStyleDataset(ReIDDataset):
    """Train / query / gallery folders of images named ``<pid>_c<camera>...``.

    Subclasses set ``name_pattern`` (a regex whose groups 1 and 2 are the pid and the 1-based
    camera), ``name_example`` (shown when a name does not parse), ``num_cameras`` and, when they
    differ from Market-1501's, ``split_folders``. Train pids are relabelled to ``0..N-1``;
    query/gallery pids are kept; pid ``-1`` (junk) is dropped everywhere.
    """

    name_pattern: ClassVar[re.Pattern[str]] = _MARKET_NAME
    name_example: ClassVar[str] = "0002_c1s1_000451_03.jpg"
    num_cameras: ClassVar[int] = 6
    split_folders: ClassVar[dict[str, str]] = {
        "train": "bounding_box_train",
        "query": "query",
        "gallery": "bounding_box_test",
    }

    def load(self) -> DatasetSplits:
        folders = self.split_folders
        train = relabel(self.parse_folder(self.root / folders["train"]))
        query = self.parse_folder(self.root / folders["query"])
        gallery = self.parse_folder(self.root / folders["gallery"])
        return DatasetSplits(self.name, str(self.root), train, query, gallery, task="reid")

    def parse_name(self, path: Path) -> tuple[int, int]:
        """(pid, 1-based camera) from a file name; raises with the path when it does not parse."""
        match = self.name_pattern.match(path.name)
        if match is None:
            raise DatasetLayoutError(
                f"{self.name}: cannot parse identity/camera from {path} "
                f"(expected a name like {self.name_example})"
            )
        return int(match.group(1)), int(match.group(2))

    def parse_folder(self, folder: Path) -> list[ImageRecord]:
        records = []
        for path in list_images(folder):
            pid, cam = self.parse_name(path)
            if pid == -1:
                continue  # junk
            if not 1 <= cam <= self.num_cameras:
                raise DatasetLayoutError(
                    f"{self.name}: camera c{cam} in {path} is outside 1..{self.num_cameras}"
                )
            records.append(ImageRecord(str(path), pid, cam - 1))
        return records


@register_dataset("market1501")
class Market1501(MarketStyleDataset):
    """Market-1501: 1,501 identities from 6 cameras.

    File names ``PPPP_cCsS_FFFFFF_DD.jpg``; pid ``-1`` marks junk boxes (dropped here, as the
    authors' evaluation ignores them) and pid ``0`` distractors (kept in the gallery).
    """

    folder_names = ("Market-1501-v15.09.15", "market1501", "Market-1501")
    required = ("bounding_box_train", "query", "bounding_box_test")
    layout = (
        "  <root>/bounding_box_train/PPPP_cCsS_FFFFFF_DD.jpg\n"
        "  <root>/query/...\n"
        "  <root>/bounding_box_test/...   (pid -1 = junk, 0 = distractor)"
    )
    expected_stats: ClassVar[dict[str, SplitStats] | None] = {
        "train": SplitStats(12936, 751, 6),
        "query": SplitStats(3368, 750, 6),
        "gallery": SplitStats(15913, 751, 6),
    }
    num_cameras = 6


@register_dataset("synthetic")
class SyntheticReID(Market1501):
    """The procedural dataset written by ``bdbnet synth`` (Market-1501 layout and naming)."""

    folder_names = ("synthetic",)
    expected_stats = None
    num_cameras = 99
