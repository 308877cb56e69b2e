"""Tiny fake copies of the benchmark layouts (real file-name and list-file formats, a few pixels
per image), shared by the dataset tests and the end-to-end training tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PIL import Image

_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}


def write_image(path: Path, size: tuple[int, int] = (8, 16), color=(120, 60, 30)) -> Path:
    """A tiny real image (format from the suffix; ``.JPG`` works as in SOP)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=_FORMATS[path.suffix.lower()])
    return path


def make_folders(root: Path, folders: dict[str, Iterable[str]], size=(8, 16)) -> Path:
    """``{folder: [file names]}`` -> images under ``root``."""
    for folder, names in folders.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            write_image(root / folder / name, size)
    return root


# ------------------------------------------------------------------------------ MSMT17
MARKET_TRAIN = [
    "0002_c1s1_000451_03.jpg",
    "0002_c2s1_000301_01.jpg",
    "0007_c3s3_015112_01.jpg",
    "0010_c6s4_002502_02.jpg",
    "0010_c5s2_050201_01.jpg",
]
MARKET_QUERY = ["0002_c3s1_000501_00.jpg", "0007_c2s1_000101_00.jpg"]
MARKET_GALLERY = [
    "-1_c1s1_000401_03.jpg",  # junk: dropped
    "0000_c6s1_000001_01.jpg",  # distractor: kept
    "0002_c1s1_000801_02.jpg",
    "0007_c4s2_000201_01.jpg",
    "-1_c2s1_000402_01.jpg",  # junk: dropped
]


def make_market(root: Path, train=MARKET_TRAIN, query=MARKET_QUERY, gallery=MARKET_GALLERY) -> Path:
    """Market-1501's three folders with real file names (junk and distractors included)."""
    for folder, names in (
        ("bounding_box_train", train),
        ("query", query),
        ("bounding_box_test", gallery),
    ):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            write_image(root / folder / name)
    return root


MSMT_TRAIN = [
    ("0000/0000_000_01_0303morning_0015_0.jpg", 0),
    ("0000/0000_001_05_0303morning_0036_1.jpg", 0),
    ("0001/0001_000_14_0303noon_0003_2.jpg", 1),
]
MSMT_VAL = [
    ("0001/0001_001_15_0303afternoon_0101_0.jpg", 1),
    ("0002/0002_000_02_0113noon_0001_0.jpg", 2),
]
MSMT_QUERY = [
    ("0000/0000_000_01_0303morning_0015_0.jpg", 0),
    ("0003/0003_004_07_0114afternoon_0201_1.jpg", 3),
]
MSMT_GALLERY = [
    ("0000/0000_003_09_0303morning_0200_0.jpg", 0),
    ("0003/0003_000_07_0114morning_0001_0.jpg", 3),
    ("0003/0003_002_12_0114noon_0100_0.jpg", 3),
]


def make_msmt17(root: Path, version: str = "V1") -> Path:
    train_dir, test_dir = (
        ("train", "test") if version == "V1" else ("mask_train_v2", "mask_test_v2")
    )
    for list_name, rows, folder in (
        ("list_train.txt", MSMT_TRAIN, train_dir),
        ("list_val.txt", MSMT_VAL, train_dir),
        ("list_query.txt", MSMT_QUERY, test_dir),
        ("list_gallery.txt", MSMT_GALLERY, test_dir),
    ):
        root.mkdir(parents=True, exist_ok=True)
        (root / list_name).write_text("".join(f"{path} {pid}\n" for path, pid in rows))
        for path, _ in rows:
            write_image(root / folder / path)
    return root


# ------------------------------------------------------------------------------ CUB-200-2011
def cub_folder(label: int) -> str:
    return f"{label:03d}.Class_{label}"


def make_cub(root: Path, images_per_class: dict[int, int], size=(20, 14)) -> Path:
    """``CUB_200_2011`` layout: ``images.txt``, ``image_class_labels.txt``, ``images/``.
    Ids are assigned in class order, as in the real files."""
    root.mkdir(parents=True, exist_ok=True)
    lines, labels = [], []
    image_id = 0
    for label, count in sorted(images_per_class.items()):
        for i in range(count):
            image_id += 1
            rel = f"{cub_folder(label)}/Class_{label}_{i:04d}_{image_id}.jpg"
            write_image(root / "images" / rel, size, color=(label % 256, 40 * i % 256, 90))
            lines.append(f"{image_id} {rel}\n")
            labels.append(f"{image_id} {label}\n")
    (root / "images.txt").write_text("".join(lines))
    (root / "image_class_labels.txt").write_text("".join(labels))
    return root


# ------------------------------------------------------------------------------ Cars196
def make_cars196(root: Path, classes: list[int]) -> Path:
    """``cars_annos.mat`` written with scipy (a struct array ``annotations`` with the real field
    names) and ``car_ims/NNNNNN.jpg``; one image per entry of ``classes``."""
    import numpy as np
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    fields = [
        ("relative_im_path", object),
        ("bbox_x1", object),
        ("bbox_y1", object),
        ("bbox_x2", object),
        ("bbox_y2", object),
        ("class", object),
        ("test", object),
    ]
    annotations = np.zeros((1, len(classes)), dtype=fields)
    for i, label in enumerate(classes):
        rel = f"car_ims/{i + 1:06d}.jpg"
        write_image(root / rel, (12, 8))
        annotations[0, i] = (rel, 1, 2, 10, 7, np.uint8(label), np.uint8(i % 2))
    names = np.array([f"Make Model {c}" for c in range(1, 197)], dtype=object)
    savemat(str(root / "cars_annos.mat"), {"annotations": annotations, "class_names": names})
    return root


# ------------------------------------------------------------------------------ SOP
SOP_HEADER = "image_id class_id super_class_id path\n"
SOP_TRAIN = [
    (1, 1, 1, "bicycle_final/111085122871_0.JPG"),
    (2, 1, 1, "bicycle_final/111085122871_1.JPG"),
    (3, 2, 1, "bicycle_final/111265328556_0.JPG"),
    (4, 3, 2, "cabinet_final/110738398118_0.JPG"),
]
SOP_TEST = [
    (1, 11319, 1, "bicycle_final/111085122871_2.JPG"),
    (2, 11319, 1, "bicycle_final/111085122871_3.JPG"),
    (3, 11320, 12, "toaster_final/111157919328_0.JPG"),
]


def make_sop(root: Path, train=SOP_TRAIN, test=SOP_TEST) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for list_name, rows in (("Ebay_train.txt", train), ("Ebay_test.txt", test)):
        body = "".join(f"{i} {c} {s} {p}\n" for i, c, s, p in rows)
        (root / list_name).write_text(SOP_HEADER + body)
        for *_, rel in rows:
            write_image(root / rel, (10, 10))
    return root


# ------------------------------------------------------------------------------ In-Shop
INSHOP_ROWS = [
    ("img/WOMEN/Dresses/id_00000002/02_1_front.jpg", "id_00000002", "train"),
    ("img/WOMEN/Dresses/id_00000002/02_2_side.jpg", "id_00000002", "train"),
    ("img/MEN/Denim/id_00000080/01_1_front.jpg", "id_00000080", "train"),
    ("img/WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg", "id_00000001", "query"),
    ("img/WOMEN/Blouses_Shirts/id_00000001/02_2_side.jpg", "id_00000001", "gallery"),
    ("img/MEN/Tees_Tanks/id_00000007/01_1_front.jpg", "id_00000007", "query"),
    ("img/MEN/Tees_Tanks/id_00000007/01_3_back.jpg", "id_00000007", "gallery"),
    ("img/MEN/Tees_Tanks/id_00000007/01_4_full.jpg", "id_00000007", "gallery"),
]


def make_inshop(
    root: Path, rows=INSHOP_ROWS, image_base: str = "", count: int | None = None
) -> Path:
    """``Eval/list_eval_partition.txt`` (count, header, aligned columns as in DeepFashion) and the
    images under ``root/<image_base>``."""
    (root / "Eval").mkdir(parents=True, exist_ok=True)
    lines = [f"{len(rows) if count is None else count}\n", "image_name item_id evaluation_status\n"]
    lines += [f"{p:<64s}{i:<24s}{s}\n" for p, i, s in rows]
    (root / "Eval" / "list_eval_partition.txt").write_text("".join(lines))
    for rel, *_ in rows:
        write_image(root / image_base / rel, (6, 9))
    return root
