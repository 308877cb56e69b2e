"""DukeMTMC-reID (Zheng et al., ICCV 2017; from Ristani et al.'s DukeMTMC videos)."""

from __future__ import annotations

import re
from typing import ClassVar

from bdbnet.data.datasets.market1501 import MarketStyleDataset
from bdbnet.data.records import SplitStats
from bdbnet.data.registry import register_dataset


@register_dataset("dukemtmcreid")
class DukeMTMCReID(MarketStyleDataset):
    """DukeMTMC-reID: 1,404 identities (+408 distractors) from 8 cameras.

    Market-1501 folders with file names ``PPPP_cC_fFFFFFFF.jpg`` (e.g. ``0001_c2_f0046182.jpg``).
    The gallery holds the 702 test identities plus 408 distractor identities.
    """

    folder_names = ("DukeMTMC-reID", "dukemtmc-reid", "dukemtmcreid", "DukeMTMC-ReID")
    required = ("bounding_box_train", "query", "bounding_box_test")
    layout = (
        "  <root>/bounding_box_train/PPPP_cC_fFFFFFFF.jpg   (e.g. 0001_c2_f0046182.jpg)\n"
        "  <root>/query/...\n"
        "  <root>/bounding_box_test/...\n"
        "  (<root> may also be the parent of a folder named DukeMTMC-reID)"
    )
    name_pattern = re.compile(r"^(\d+)_c(\d+)_f\d+")
    name_example = "0001_c2_f0046182.jpg"
    num_cameras = 8
    expected_stats: ClassVar[dict[str, SplitStats] | None] = {
        "train": SplitStats(16522, 702, 8),
        "query": SplitStats(2228, 702, 8),
        "gallery": SplitStats(17661, 1110, 8),
    }
