import numpy as np
import torch
from PIL import Image

from bdbnet.data.transforms import build_test_transform
from bdbnet.models.loading import load_trained_model
from bdbnet.visualization.activation import (
    activation_maps,
    colorize,
    draw_activation_maps,
    overlay,
)


def test_feature_maps_are_what_the_branches_pool(tiny_checkpoint):
    model, _ = load_trained_model(tiny_checkpoint)
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        maps = model.feature_maps(x)
        feats = model(x)
        glob = model.global_reduction(maps["global"].mean((2, 3), keepdim=True)).flatten(1)
        drop = model.drop_reduction(maps["drop"].amax((2, 3)))
    assert maps["global"].shape == maps["drop"].shape == (2, 2048, 4, 2)
    torch.testing.assert_close(torch.cat([glob, drop], 1), feats)


def test_activation_maps_shape_range_and_mode(tiny_checkpoint):
    model, _ = load_trained_model(tiny_checkpoint)
    model.train()
    maps = activation_maps(model, torch.randn(3, 3, 32, 16))
    assert model.training  # mode restored
    assert set(maps) == {"global", "drop"}
    for m in maps.values():
        assert m.shape == (3, 32, 16)
        assert m.min() >= 0 and m.max() <= 1
        assert torch.allclose(m.flatten(1).amax(1), torch.ones(3))


def test_colorize_and_overlay():
    ramp = np.linspace(0, 1, 5)[None].repeat(2, 0)
    rgb = colorize(ramp)
    assert rgb.shape == (2, 5, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 2] > rgb[0, 0, 0] and rgb[0, -1, 0] > rgb[0, -1, 2]  # blue -> red
    img = Image.new("RGB", (10, 20), (0, 0, 0))
    out = overlay(img, torch.ones(5, 4), alpha=0.5)
    assert out.size == (10, 20)


def test_draw_activation_maps_writes_a_picture(tiny_checkpoint, person_images, tmp_path):
    model, cfg = load_trained_model(tiny_checkpoint)
    images = [Image.open(p).convert("RGB") for p in person_images[:3]]
    out = draw_activation_maps(
        model,
        images,
        build_test_transform(cfg.data),
        tmp_path / "maps" / "act.png",
        preprocess=model.preprocess,
        names=person_images[:3],
    )
    assert out.stat().st_size > 1000
    with Image.open(out) as pic:
        w, h = pic.size
        arr = np.asarray(pic.convert("RGB"))
    # 3 columns (input, global, drop) of 32x16 inputs enlarged to 192x96; 3 rows
    assert w >= 3 * 96 and h >= 3 * 192
    assert arr.std() > 10  # not blank
