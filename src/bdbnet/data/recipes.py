"""Turn a :class:`~bdbnet.config.DataConfig` into the recipe's train/test transforms."""

from __future__ import annotations

from torchvision.transforms import v2

from bdbnet.config import DataConfig
from bdbnet.data.transforms import (
    reid_test_transform,
    reid_train_transform,
    retrieval_test_transform,
    retrieval_train_transform,
)


def build_train_transform(cfg: DataConfig) -> v2.Compose:
    if cfg.recipe == "retrieval":
        return retrieval_train_transform(cfg.resize, cfg.width, cfg.flip, cfg.erasing_prob)
    return reid_train_transform((cfg.height, cfg.width), cfg.flip, cfg.cutout_prob, cfg.cutout_size)


def build_test_transform(cfg: DataConfig) -> v2.Compose:
    if cfg.recipe == "retrieval":
        return retrieval_test_transform(cfg.test_resize, pad_to_square=cfg.test_pad_to_square)
    return reid_test_transform((cfg.height, cfg.width))


def preprocessing_info(cfg: DataConfig) -> dict:
    """What a deployed model needs to reproduce the test preprocessing (stored in checkpoints
    and exported files)."""
    from bdbnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    info = {"recipe": cfg.recipe, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    if cfg.recipe == "retrieval":
        info.update(pad_to_square=cfg.test_pad_to_square, resize=[cfg.test_resize, cfg.test_resize])
    else:
        info.update(pad_to_square=False, resize=[cfg.height, cfg.width])
    return info
