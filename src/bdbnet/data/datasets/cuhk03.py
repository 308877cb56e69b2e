"""CUHK03 (Li et al., CVPR 2014) under the new protocol of Zhong et al. (CVPR 2017): CUHK03-NP.

The new protocol splits the 1,467 identities into 767 for training and 700 for testing and
evaluates like Market-1501 (multi-shot, mAP). It comes in two versions: hand-``labeled`` boxes
and ``detected`` (DPM) boxes, stored side by side in ``cuhk03-np/``.
"""

from __future__ import annotations

import re
from typing import ClassVar

from bdbnet.data.datasets.market1501 import MarketStyleDataset
from bdbnet.data.records import SplitStats
from bdbnet.data.registry import register_dataset

_FOLDERS = ("cuhk03-np", "CUHK03-NP", "cuhk03_np", "cuhk03")


class _CUHK03NP(MarketStyleDataset):
    variant: ClassVar[str] = ""
    required = ("bounding_box_train", "query", "bounding_box_test")
    name_pattern = re.compile(r"^(\d+)_c(\d+)_\d+")
    name_example = "0001_c1_1.png"
    num_cameras = 2

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # <root> may be cuhk03-np/<variant> itself, cuhk03-np/ or the parent of cuhk03-np/.
        cls.folder_names = (cls.variant, *(f"{name}/{cls.variant}" for name in _FOLDERS))
        cls.layout = (
            f"  <root>/{cls.variant}/bounding_box_train/PPPP_cC_N.png   (e.g. 0001_c1_1.png)\n"
            f"  <root>/{cls.variant}/query/...\n"
            f"  <root>/{cls.variant}/bounding_box_test/...\n"
            f"  (<root> is the cuhk03-np folder, its parent, or {cls.variant}/ itself)"
        )


@register_dataset("cuhk03-np-labeled")
class CUHK03NPLabeled(_CUHK03NP):
    """CUHK03-NP, labeled boxes: 767 train / 700 test identities from 2 cameras."""

    variant = "labeled"
    expected_stats: ClassVar[dict[str, SplitStats] | None] = {
        "train": SplitStats(7368, 767, 2),
        "query": SplitStats(1400, 700, 2),
        "gallery": SplitStats(5328, 700, 2),
    }


@register_dataset("cuhk03-np-detected")
class CUHK03NPDetected(_CUHK03NP):
    """CUHK03-NP, detected boxes: 767 train / 700 test identities from 2 cameras."""

    variant = "detected"
    expected_stats: ClassVar[dict[str, SplitStats] | None] = {
        "train": SplitStats(7365, 767, 2),
        "query": SplitStats(1400, 700, 2),
        "gallery": SplitStats(5332, 700, 2),
    }
