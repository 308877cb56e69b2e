"""Cars196 (Krause et al., "3D Object Representations for Fine-Grained Categorization", 2013)."""

from __future__ import annotations

from typing import ClassVar

from bdbnet.data.datasets.base import (
    DatasetLayoutError,
    ReIDDataset,
    check_images_exist,
    retrieval_splits,
)
from bdbnet.data.records import DatasetSplits, ImageRecord, SplitStats
from bdbnet.data.registry import register_dataset


@register_dataset("cars196")
class Cars196(ReIDDataset):
    """Cars196: 16,185 car images of 196 models (classes 1-98 train, 99-196 test).

    Reads ``cars_annos.mat`` (needs scipy: ``pip install bdbnet[scipy]``). The metric-learning
    split is by class; the file's own ``test`` flag (a classification split) is ignored. The
    test classes are a leave-one-out set (query = gallery, Recall@K).
    """

    task = "retrieval"
    folder_names = ("cars196", "CARS196", "Cars196", "stanford_cars", "car196")
    required = ("car_ims", "cars_annos.mat")
    layout = (
        "  <root>/car_ims/000001.jpg ...\n"
        "  <root>/cars_annos.mat   struct array 'annotations' with relative_im_path\n"
        "                          ('car_ims/000001.jpg') and class (1..196)\n"
        "  (<root> may also be the parent of a folder named cars196)"
    )
    num_train_classes = 98
    expected_stats: ClassVar[dict[str, SplitStats] | None] = {
        "train": SplitStats(8054, 98, 1),
        "query": SplitStats(8131, 98, 1),
        "gallery": SplitStats(8131, 98, 1),
    }

    def load(self) -> DatasetSplits:
        annos = self.root / "cars_annos.mat"
        train, test = [], []
        for relpath, label in self.read_annotations():
            record = ImageRecord(str(self.root / relpath), label, 0)
            (train if label <= self.num_train_classes else test).append(record)
        check_images_exist(train + test, self.name, annos)
        return retrieval_splits(self, train, test)

    def read_annotations(self) -> list[tuple[str, int]]:
        """``(relative image path, class)`` of every entry of ``cars_annos.mat``."""
        try:
            import numpy as np
            from scipy.io import loadmat
        except ImportError as err:  # pragma: no cover - exercised only without scipy
            raise ImportError(
                "reading cars_annos.mat needs scipy: pip install bdbnet[scipy]"
            ) from err
        path = self.root / "cars_annos.mat"
        try:
            mat = loadmat(str(path), squeeze_me=True)
        except Exception as err:  # scipy raises several types for a corrupt/foreign file
            raise DatasetLayoutError(f"{self.name}: cannot read {path}: {err}") from err
        if "annotations" not in mat:
            raise DatasetLayoutError(
                f"{self.name}: {path} has no 'annotations' array (found: "
                f"{', '.join(k for k in mat if not k.startswith('__'))})"
            )
        annotations = np.atleast_1d(mat["annotations"])
        fields = annotations.dtype.names or ()
        for field in ("relative_im_path", "class"):
            if field not in fields:
                raise DatasetLayoutError(
                    f"{self.name}: the annotations of {path} have no field {field!r} "
                    f"(fields: {', '.join(fields) or 'none'})"
                )
        return [(str(a["relative_im_path"]), int(a["class"])) for a in annotations]
