"""The one preprocessing spec: from a config, to and from files, and what every path builds
from it."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config
from PIL import Image

from bdbnet.config import DataConfig
from bdbnet.data.pipelines.decode import decode_file
from bdbnet.data.pipelines.tensor import TensorRecipe, channel_statistics, normalise
from bdbnet.data.transforms import PadToSquare, inference_transform
from bdbnet.errors import CheckpointError
from bdbnet.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing


def test_from_the_config_of_each_recipe():
    assert Preprocessing.from_data_config(DataConfig(height=384, width=128)) == Preprocessing(
        (384, 128), recipe="reid"
    )
    sop = Preprocessing.from_data_config(DataConfig(recipe="retrieval", test_resize=224))
    assert (sop.size, sop.pad_to_square, sop.recipe) == ((224, 224), True, "retrieval")
    cars = DataConfig(recipe="retrieval", test_resize=256, test_pad_to_square=False)
    assert not Preprocessing.from_data_config(cars).pad_to_square


def test_round_trip_and_files_written_before_the_spec():
    spec = Preprocessing((64, 32), True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "retrieval")
    assert Preprocessing.from_dict(spec.to_dict()) == spec
    older = {"recipe": "reid", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    older |= {"pad_to_square": False, "resize": [384, 128]}  # what checkpoints held before
    assert Preprocessing.from_dict(older) == Preprocessing((384, 128))
    assert spec.with_size(128, 64).size == (128, 64)


@pytest.mark.parametrize(
    "entry",
    [{"mean": [0.5] * 3}, {"resize": [384]}, {"resize": [384, 128], "mean": [1, 2]}],
    ids=["no resize", "one size", "two means"],
)
def test_a_malformed_entry_names_the_file(entry):
    with pytest.raises(CheckpointError, match="model.pt: malformed preprocessing entry"):
        Preprocessing.from_dict(entry, "model.pt")


@pytest.mark.parametrize("pad", [False, True])
def test_the_pil_transform_and_the_tensor_recipe_follow_the_spec_bit_for_bit(tmp_path, pad):
    spec = Preprocessing((32, 16), pad_to_square=pad, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.4))
    path = tmp_path / "person.png"
    Image.effect_noise((23, 57), 60).convert("RGB").save(path)
    pil = inference_transform(spec)
    assert (PadToSquare in [type(t) for t in pil.transforms]) == pad
    expected = pil(Image.open(path).convert("RGB")).as_subclass(torch.Tensor)
    recipe = TensorRecipe.from_preprocessing(spec)
    decoded = decode_file(str(path), recipe.prepare)
    statistics = channel_statistics(recipe.mean, recipe.std, torch.device("cpu"))
    assert expected.shape == (3, *spec.size)
    assert torch.equal(normalise(decoded[None], *statistics)[0], expected)


def test_a_trained_model_carries_the_spec_of_its_config():
    from bdbnet.engine.builders import build_model

    cfg = tiny_config("model.backbone=resnet18", "model.pretrained=null")
    model = build_model(cfg, 4)
    assert model.preprocess == Preprocessing.from_data_config(cfg.data)
