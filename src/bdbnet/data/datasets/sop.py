"""Stanford Online Products (Oh Song et al., "Deep Metric Learning via Lifted Structured Feature
Embedding", CVPR 2016)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from bdbnet.data.datasets.base import (
    ReIDDataset,
    check_images_exist,
    parse_int,
    read_list_file,
    retrieval_splits,
)
from bdbnet.data.records import DatasetSplits, ImageRecord, SplitStats
from bdbnet.data.registry import register_dataset


@register_dataset("sop")
class StanfordOnlineProducts(ReIDDataset):
    """Stanford Online Products: 120,053 images of 22,634 products (Ebay_train / Ebay_test).

    ``Ebay_train.txt`` (11,318 classes) trains; ``Ebay_test.txt`` (11,316 classes) is a
    leave-one-out set (query = gallery, Recall@K with K = 1, 10, 100, 1000).
    """

    task = "retrieval"
    folder_names = ("Stanford_Online_Products", "sop", "SOP", "stanford_online_products")
    required = ("Ebay_train.txt", "Ebay_test.txt")
    layout = (
        "  <root>/Ebay_train.txt, Ebay_test.txt\n"
        "      header 'image_id class_id super_class_id path', then rows such as\n"
        "      '1 1 1 bicycle_final/111085122871_0.JPG'\n"
        "  <root>/bicycle_final/..., cabinet_final/..., ...   (the 12 image folders)\n"
        "  (<root> is Stanford_Online_Products/ or its parent)"
    )
    expected_stats: ClassVar[dict[str, SplitStats] | None] = {
        "train": SplitStats(59551, 11318, 1),
        "query": SplitStats(60502, 11316, 1),
        "gallery": SplitStats(60502, 11316, 1),
    }

    def load(self) -> DatasetSplits:
        train = self.read_list(self.root / "Ebay_train.txt")
        test = self.read_list(self.root / "Ebay_test.txt")
        return retrieval_splits(self, train, test)

    def read_list(self, list_file: Path) -> list[ImageRecord]:
        records = []
        for line, (_, class_id, _, relpath, *_) in read_list_file(
            list_file, self.name, 4, skip_lines=1, example="1 1 1 bicycle_final/111085122871_0.JPG"
        ):
            label = parse_int(class_id, self.name, list_file, line, "class_id")
            records.append(ImageRecord(str(self.root / relpath), label, 0))
        check_images_exist(records, self.name, list_file)
        return records
