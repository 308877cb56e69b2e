"""MSMT17 (Wei et al., "Person Transfer GAN", CVPR 2018), versions V1 and V2."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from bdbnet.data.datasets.base import (
    DatasetLayoutError,
    ReIDDataset,
    check_images_exist,
    parse_int,
    read_list_file,
)
from bdbnet.data.records import DatasetSplits, ImageRecord, SplitStats, relabel
from bdbnet.data.registry import register_dataset

_LIST_EXAMPLE = "0000/0000_000_01_0303morning_0015_0.jpg 0"


@register_dataset("msmt17")
class MSMT17(ReIDDataset):
    """MSMT17: 4,101 identities from 15 cameras (V1 and V2 folder layouts).

    Splits come from the list files, one ``<relative path> <pid>`` per line; the camera is the
    third underscore-separated field of the file name (``0000_000_01_0303morning_0015_0.jpg`` is
    camera 1). As is usual for MSMT17 (torchreid does the same), the model trains on train + val
    (``list_train.txt`` and ``list_val.txt`` together: 32,621 images of 1,041 identities).
    V1 keeps the images in ``train/`` and ``test/``, V2 in ``mask_train_v2/`` and
    ``mask_test_v2/``.
    """

    folder_names = ("MSMT17_V1", "MSMT17_V2", "MSMT17", "msmt17")
    required = (
        "train|mask_train_v2",
        "test|mask_test_v2",
        "list_train.txt",
        "list_val.txt",
        "list_query.txt",
        "list_gallery.txt",
    )
    layout = (
        "  <root>/train/0000/0000_000_01_0303morning_0015_0.jpg   (V2: mask_train_v2/)\n"
        "  <root>/test/...                                        (V2: mask_test_v2/)\n"
        "  <root>/list_train.txt, list_val.txt, list_query.txt, list_gallery.txt\n"
        "      one '<path relative to train/ or test/> <pid>' per line\n"
        "  (<root> may also be the parent of MSMT17_V1/ or MSMT17_V2/)"
    )
    num_cameras = 15
    expected_stats: ClassVar[dict[str, SplitStats] | None] = {
        "train": SplitStats(32621, 1041, 15),
        "query": SplitStats(11659, 3060, 15),
        "gallery": SplitStats(82161, 3060, 15),
    }

    def load(self) -> DatasetSplits:
        train_dir = self.first_existing("train", "mask_train_v2")
        test_dir = self.first_existing("test", "mask_test_v2")
        train = self.read_list("list_train.txt", train_dir) + self.read_list(
            "list_val.txt", train_dir
        )
        query = self.read_list("list_query.txt", test_dir)
        gallery = self.read_list("list_gallery.txt", test_dir)
        version = "V2" if train_dir.name == "mask_train_v2" else "V1"
        return DatasetSplits(
            self.name,
            str(self.root),
            relabel(train),
            query,
            gallery,
            task="reid",
            extra={"version": version},
        )

    def read_list(self, list_name: str, image_dir: Path) -> list[ImageRecord]:
        list_file = self.root / list_name
        records = []
        for line, (relpath, pid_text, *_) in read_list_file(
            list_file, self.name, 2, example=_LIST_EXAMPLE
        ):
            pid = parse_int(pid_text, self.name, list_file, line, "pid")
            camera = self.parse_camera(relpath, list_file, line)
            records.append(ImageRecord(str(image_dir / relpath), pid, camera - 1))
        check_images_exist(records, self.name, list_file)
        return records

    def parse_camera(self, relpath: str, list_file: Path, line: int) -> int:
        """1-based camera: the third ``_`` field of the file name."""
        fields = Path(relpath).name.split("_")
        try:
            camera = int(fields[2])
        except (IndexError, ValueError):
            raise DatasetLayoutError(
                f"{self.name}: line {line} of {list_file}: cannot parse the camera from "
                f"{relpath!r} (expected a name like 0000_000_01_0303morning_0015_0.jpg)"
            ) from None
        if not 1 <= camera <= self.num_cameras:
            raise DatasetLayoutError(
                f"{self.name}: line {line} of {list_file}: camera {camera} in {relpath!r} is "
                f"outside 1..{self.num_cameras}"
            )
        return camera
