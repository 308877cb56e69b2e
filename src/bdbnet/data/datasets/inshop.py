"""In-Shop Clothes Retrieval (Liu et al., DeepFashion, CVPR 2016)."""

from __future__ import annotations

import re
from typing import ClassVar

from bdbnet.data.datasets.base import (
    DatasetLayoutError,
    ReIDDataset,
    check_images_exist,
    read_list_file,
    retrieval_splits,
)
from bdbnet.data.records import DatasetSplits, ImageRecord, SplitStats
from bdbnet.data.registry import register_dataset

_ITEM_ID = re.compile(r"^id_(\d+)$")
_ROW_EXAMPLE = "img/WOMEN/Dresses/id_00000002/02_1_front.jpg id_00000002 train"


@register_dataset("inshop")
class InShop(ReIDDataset):
    """In-Shop Clothes Retrieval: 52,712 images of 7,982 items (train / query / gallery).

    Splits from ``Eval/list_eval_partition.txt``; item ids ``id_00000002`` become the integer 2.
    Query and gallery are separate lists (Recall@K with K = 1, 10, 20, 30, 40, 50).
    """

    task = "retrieval"
    folder_names = (
        "In-shop Clothes Retrieval Benchmark",
        "inshop",
        "InShop",
        "In-Shop",
        "deepfashion_inshop",
    )
    required = ("img|Img/img", "Eval/list_eval_partition.txt")
    layout = (
        "  <root>/img/WOMEN/Dresses/id_00000002/02_1_front.jpg ...   (or <root>/Img/img/...)\n"
        "  <root>/Eval/list_eval_partition.txt   line 1: the number of images, line 2: the\n"
        "      header 'image_name item_id evaluation_status', then e.g.\n"
        f"      '{_ROW_EXAMPLE}'\n"
        "  (<root> may also be the parent of 'In-shop Clothes Retrieval Benchmark/' or inshop/)"
    )
    expected_stats: ClassVar[dict[str, SplitStats] | None] = {
        "train": SplitStats(25882, 3997, 1),
        "query": SplitStats(14218, 3985, 1),
        "gallery": SplitStats(12612, 3985, 1),
    }

    def load(self) -> DatasetSplits:
        list_file = self.root / "Eval" / "list_eval_partition.txt"
        # The list's paths start with img/; DeepFashion ships that folder inside Img/.
        base = self.root if (self.root / "img").is_dir() else self.root / "Img"
        rows = read_list_file(list_file, self.name, 3, skip_lines=2, example=_ROW_EXAMPLE)
        splits: dict[str, list[ImageRecord]] = {"train": [], "query": [], "gallery": []}
        for line, (relpath, item, status, *_) in rows:
            match = _ITEM_ID.match(item)
            if match is None:
                raise DatasetLayoutError(
                    f"{self.name}: line {line} of {list_file}: item id {item!r} does not look "
                    "like id_00000002"
                )
            if status not in splits:
                raise DatasetLayoutError(
                    f"{self.name}: line {line} of {list_file}: evaluation status {status!r} is "
                    "not train, query or gallery"
                )
            splits[status].append(ImageRecord(str(base / relpath), int(match.group(1)), 0))
        self._check_count(list_file, len(rows))
        check_images_exist(
            splits["train"] + splits["query"] + splits["gallery"], self.name, list_file
        )
        return retrieval_splits(self, splits["train"], splits["query"], splits["gallery"])

    def _check_count(self, list_file, num_rows: int) -> None:
        """Line 1 holds the number of rows; a mismatch means a truncated or edited file."""
        with open(list_file, encoding="utf-8") as handle:
            first = handle.readline().strip()
        if not first.isdigit():
            raise DatasetLayoutError(
                f"{self.name}: line 1 of {list_file} should be the number of images, got {first!r}"
            )
        if int(first) != num_rows:
            raise DatasetLayoutError(
                f"{self.name}: {list_file} says {first} images on line 1 but lists {num_rows} "
                "(a truncated file?)"
            )
