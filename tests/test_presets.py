"""The bundled recipes: one preset per dataset, with the paper's settings."""

import pytest

from bdbnet.config import list_presets, load_config

REID = ["market1501", "dukemtmcreid", "cuhk03-np-labeled", "cuhk03-np-detected", "msmt17", "folder"]
RETRIEVAL = {
    "cub200": ([1, 2, 4, 8, 16, 32], 256),
    "cars196": ([1, 2, 4, 8, 16, 32], 256),
    "sop": ([1, 10, 100, 1000], 224),
    "inshop": ([1, 10, 20, 30, 40, 50], 256),
}


def test_every_dataset_preset_is_bundled():
    assert set(REID) | set(RETRIEVAL) <= set(list_presets())


@pytest.mark.parametrize("name", REID)
def test_reid_presets(name):
    cfg = load_config(name)
    assert cfg.data.dataset == name
    assert (cfg.data.recipe, cfg.data.height, cfg.data.width) == ("reid", 384, 128)
    assert (cfg.data.cutout_prob, cfg.data.cutout_size) == (0.5, 64)
    assert (cfg.model.drop_height_ratio, cfg.model.drop_width_ratio) == (0.3, 1.0)
    assert (cfg.data.num_identities, cfg.data.num_instances) == (32, 4)
    assert (cfg.optim.optimizer, cfg.optim.epochs, cfg.optim.milestones) == (
        "adam",
        400,
        [200, 300],
    )
    # everything but the dataset name is the Market-1501 recipe
    market = load_config("market1501")
    market.data.dataset = name
    assert cfg == market


@pytest.mark.parametrize("name", sorted(RETRIEVAL))
def test_retrieval_presets(name):
    ks, test_resize = RETRIEVAL[name]
    cfg = load_config(name)
    assert cfg.data.dataset == name
    assert cfg.data.recipe == "retrieval"
    assert (cfg.data.resize, cfg.data.width, cfg.data.test_resize) == (256, 224, test_resize)
    assert cfg.data.erasing_prob == 0.5
    assert (cfg.model.drop_height_ratio, cfg.model.drop_width_ratio) == (0.5, 0.5)
    assert cfg.model.last_stride == 1  # 224 / 16 = the 14 x 14 map of the paper
    assert cfg.eval.recall_ks == ks
    # the official code resizes CARS196 test images without padding them to a square
    assert cfg.data.test_pad_to_square is (name != "cars196")
