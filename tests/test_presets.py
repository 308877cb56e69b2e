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


OFFICIAL = ["market1501", "dukemtmcreid", "cuhk03-np-labeled", "cuhk03-np-detected", "msmt17"]


@pytest.mark.parametrize("name", OFFICIAL)
def test_official_presets_differ_from_the_paper_only_as_the_official_command_line(name):
    official, paper = load_config(f"{name}-official"), load_config(name)
    assert official.data.dataset == name
    assert official.model.drop_height_ratio == 0.33
    assert (official.train.eval_every, official.train.keep_best) == (30, "rank1")
    assert (official.train.replicas, official.eval.flip, official.eval.ap_mode) == (
        4,
        True,
        "truncated",
    )
    assert (official.optim.optimizer, official.optim.weight_decay) == ("adam", 5e-4)
    # everything else is the paper preset
    paper.model.drop_height_ratio = 0.33
    paper.train.eval_every, paper.train.keep_best, paper.train.replicas = 30, "rank1", 4
    paper.eval.flip, paper.eval.ap_mode = True, "truncated"
    assert official == paper


@pytest.mark.parametrize("name", OFFICIAL)
def test_the_paper_preset_stays_the_default_and_reports_like_the_paper(name):
    from bdbnet.cli import default_preset

    assert default_preset(name) == name
    cfg = load_config(name)
    assert (cfg.train.keep_best, cfg.eval.flip, cfg.eval.ap_mode) == ("none", False, "full")
    assert cfg.train.replicas == 1


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_is_fast_by_default(name):
    cfg = load_config(name)
    assert (cfg.train.amp, cfg.train.channels_last) == ("auto", True)


TRANSFER = {
    "market1501-to-dukemtmcreid": ("market1501", "dukemtmcreid"),
    "dukemtmcreid-to-market1501": ("dukemtmcreid", "market1501"),
    "msmt17-to-market1501": ("msmt17", "market1501"),
}


@pytest.mark.parametrize("name", sorted(TRANSFER))
def test_direct_transfer_presets_are_the_source_recipe_tested_on_the_target_too(name):
    source, target = TRANSFER[name]
    cfg = load_config(name)
    assert cfg.eval.targets == [target, source]  # the target first: keep_best would follow it
    paper = load_config(source)
    paper.eval.targets = [target, source]
    assert cfg == paper


def test_the_generalist_trains_on_four_sources_with_their_test_identities():
    from bdbnet.data import list_datasets

    cfg = load_config("generalist")
    four = ["market1501", "dukemtmcreid", "cuhk03-np-labeled", "msmt17"]
    assert cfg.data.sources == four and cfg.eval.targets == four
    assert cfg.data.combine_all is True
    assert set(four) <= set(list_datasets())
    market = load_config("market1501")
    market.data.sources, market.data.combine_all, market.eval.targets = four, True, four
    assert cfg == market


def test_every_preset_says_where_its_values_come_from():
    from importlib import resources

    for name in list_presets():
        text = (resources.files("bdbnet") / "presets" / f"{name}.yaml").read_text()
        assert text.startswith("#") and text.count("\n#") >= 2, name
