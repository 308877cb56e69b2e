import torch
from PIL import Image
from torchvision.transforms import v2

from bdbnet.config import DataConfig
from bdbnet.data.transforms import (
    Cutout,
    PadToSquare,
    RandomErasing,
    build_test_transform,
    build_train_transform,
)
from bdbnet.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing


def preprocessing_info(cfg: DataConfig) -> dict:
    return Preprocessing.from_data_config(cfg).to_dict()


COMMON = {"interpolation": "bilinear", "antialias": True, "color": "RGB", "scale": 1 / 255}


def kinds(tf: v2.Compose) -> list[type]:
    return [type(t) for t in tf.transforms]


def test_reid_recipe_default_config():
    cfg = DataConfig()
    train = build_train_transform(cfg)
    assert kinds(train) == [
        v2.Resize,
        v2.RandomHorizontalFlip,
        v2.ToImage,
        v2.ToDtype,
        v2.Normalize,
        Cutout,
    ]
    assert list(train.transforms[0].size) == [384, 128]
    cut = train.transforms[-1]
    assert (cut.p, cut.size) == (0.5, 64)
    test = build_test_transform(cfg)
    assert kinds(test) == [v2.Resize, v2.ToImage, v2.ToDtype, v2.Normalize]
    assert list(test.transforms[0].size) == [384, 128]
    assert build_test_transform(cfg)(Image.new("RGB", (50, 100))).shape == (3, 384, 128)


def test_reid_recipe_follows_config_fields():
    cfg = DataConfig(
        recipe="reid", height=48, width=24, flip=False, cutout_prob=0.25, cutout_size=12
    )
    train = build_train_transform(cfg)
    assert v2.RandomHorizontalFlip not in kinds(train)
    cut = train.transforms[-1]
    assert isinstance(cut, Cutout)
    assert (cut.p, cut.size) == (0.25, 12)
    img = Image.new("RGB", (10, 30), (1, 2, 3))
    assert train(img).shape == (3, 48, 24)
    assert build_test_transform(cfg)(img).shape == (3, 48, 24)
    no_cutout = build_train_transform(DataConfig(cutout_prob=0.0))
    assert Cutout not in kinds(no_cutout)


def test_retrieval_recipe_follows_config_fields():
    cfg = DataConfig(
        recipe="retrieval", resize=64, width=56, test_resize=60, flip=True, erasing_prob=0.3
    )
    train = build_train_transform(cfg)
    assert kinds(train) == [
        PadToSquare,
        v2.Resize,
        v2.RandomCrop,
        v2.RandomHorizontalFlip,
        v2.ToImage,
        v2.ToDtype,
        v2.Normalize,
        RandomErasing,
    ]
    assert list(train.transforms[1].size) == [64, 64]
    assert train.transforms[-1].p == 0.3
    img = Image.new("RGB", (80, 30), (5, 5, 5))
    torch.manual_seed(0)
    assert train(img).shape == (3, 56, 56)  # random crop to `width`
    test = build_test_transform(cfg)
    assert kinds(test) == [PadToSquare, v2.Resize, v2.ToImage, v2.ToDtype, v2.Normalize]
    assert test(img).shape == (3, 60, 60)


def test_retrieval_recipe_without_flip_or_erasing():
    cfg = DataConfig(recipe="retrieval", resize=32, width=28, flip=False, erasing_prob=0.0)
    train = build_train_transform(cfg)
    assert v2.RandomHorizontalFlip not in kinds(train)
    assert RandomErasing not in kinds(train)
    assert train(Image.new("RGB", (20, 40))).shape == (3, 28, 28)


def test_preprocessing_info_reid():
    info = preprocessing_info(DataConfig(height=256, width=128, test_resize=999))
    assert info == {
        "recipe": "reid",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "pad_to_square": False,
        "resize": [256, 128],
        "layout": "NCHW",
        **COMMON,
    }


def test_preprocessing_info_retrieval():
    info = preprocessing_info(DataConfig(recipe="retrieval", height=1, width=224, test_resize=224))
    assert info == {
        "recipe": "retrieval",
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "pad_to_square": True,
        "resize": [224, 224],
        "layout": "NCHW",
        **COMMON,
    }


def test_preprocessing_info_matches_the_test_transform():
    img = Image.new("RGB", (37, 81), (12, 34, 56))
    for cfg in (DataConfig(height=40, width=20), DataConfig(recipe="retrieval", test_resize=48)):
        info = preprocessing_info(cfg)
        out = build_test_transform(cfg)(img)
        assert list(out.shape[1:]) == info["resize"]


def test_retrieval_test_without_padding_for_cars196():
    cfg = DataConfig(recipe="retrieval", test_resize=48, test_pad_to_square=False)
    test = build_test_transform(cfg)
    assert kinds(test) == [v2.Resize, v2.ToImage, v2.ToDtype, v2.Normalize]
    assert test(Image.new("RGB", (37, 81))).shape == (3, 48, 48)
    assert preprocessing_info(cfg)["pad_to_square"] is False
