"""CUB-200-2011 (Wah et al., Caltech-UCSD Birds, 2011) with the metric-learning split."""

from __future__ import annotations

from typing import ClassVar

from bdbnet.data.datasets.base import (
    DatasetLayoutError,
    ReIDDataset,
    check_images_exist,
    parse_int,
    read_list_file,
    retrieval_splits,
)
from bdbnet.data.records import DatasetSplits, ImageRecord, SplitStats
from bdbnet.data.registry import register_dataset


@register_dataset("cub200")
class CUB200(ReIDDataset):
    """CUB-200-2011: 11,788 bird images of 200 species (classes 1-100 train, 101-200 test).

    The zero-shot split of metric learning (Oh Song et al., 2016): the first 100 classes train,
    the other 100 are the leave-one-out test set (query = gallery, Recall@K). The official
    ``train_test_split.txt`` (a classification split) is not used.
    """

    task = "retrieval"
    folder_names = ("CUB_200_2011", "cub200", "CUB200", "cub_200_2011")
    required = ("images", "images.txt", "image_class_labels.txt")
    layout = (
        "  <root>/images/001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg ...\n"
        "  <root>/images.txt              '<image id> <path relative to images/>' per line\n"
        "  <root>/image_class_labels.txt  '<image id> <class 1..200>' per line\n"
        "  (<root> is CUB_200_2011/ or its parent)"
    )
    num_train_classes = 100
    expected_stats: ClassVar[dict[str, SplitStats] | None] = {
        "train": SplitStats(5864, 100, 1),
        "query": SplitStats(5924, 100, 1),
        "gallery": SplitStats(5924, 100, 1),
    }

    def load(self) -> DatasetSplits:
        images_txt = self.root / "images.txt"
        labels_txt = self.root / "image_class_labels.txt"
        paths = {}
        for line, (image_id, relpath, *_) in read_list_file(
            images_txt, self.name, 2, example="1 001.Black_footed_Albatross/Black_Foo..._18.jpg"
        ):
            paths[parse_int(image_id, self.name, images_txt, line, "image id")] = relpath
        labels = {}
        for line, (image_id, label, *_) in read_list_file(labels_txt, self.name, 2, example="1 1"):
            key = parse_int(image_id, self.name, labels_txt, line, "image id")
            labels[key] = parse_int(label, self.name, labels_txt, line, "class")
        unlabelled = sorted(set(paths) - set(labels))
        if unlabelled:
            raise DatasetLayoutError(
                f"{self.name}: {len(unlabelled)} image id(s) of {images_txt} have no class in "
                f"{labels_txt}, e.g. {unlabelled[0]}"
            )
        train, test = [], []
        for image_id in sorted(paths):
            label = labels[image_id]
            record = ImageRecord(str(self.root / "images" / paths[image_id]), label, 0)
            (train if label <= self.num_train_classes else test).append(record)
        check_images_exist(train + test, self.name, images_txt)
        return retrieval_splits(self, train, test)
