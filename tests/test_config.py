import pytest

from bdbnet.config import (
    Config,
    ConfigError,
    apply_dict,
    list_presets,
    load_config,
    parse_overrides,
)


def test_presets_are_bundled_and_valid():
    assert {"market1501", "synthetic-demo"} <= set(list_presets())
    for name in list_presets():
        assert isinstance(load_config(name), Config)


def test_market_preset_is_the_official_recipe():
    cfg = load_config("market1501")
    assert (cfg.data.height, cfg.data.width) == (384, 128)
    assert (cfg.data.num_identities, cfg.data.num_instances) == (32, 4)
    assert (cfg.data.cutout_prob, cfg.data.cutout_size) == (0.5, 64)
    assert (cfg.model.drop_height_ratio, cfg.model.drop_width_ratio) == (0.3, 1.0)
    assert cfg.model.pretrained == "imagenet"
    assert (cfg.optim.optimizer, cfg.optim.lr, cfg.optim.weight_decay) == ("adam", 1e-3, 5e-4)
    assert (cfg.optim.epochs, cfg.optim.warmup_epochs, cfg.optim.milestones) == (
        400,
        50,
        [200, 300],
    )
    assert cfg.loss.triplet_margin is None and cfg.loss.label_smoothing == 0.1
    assert cfg.eval.flip is False


def test_override_order_and_parsing(tmp_path):
    file = tmp_path / "cfg.yaml"
    file.write_text("optim:\n  epochs: 7\n  lr: 2.0e-4\nmodel:\n  pretrained: null\n")
    cfg = load_config(
        "market1501",
        file,
        ["optim.epochs=9", "optim.milestones=[3, 6]", "loss.triplet_margin=0.3", "train.amp=bf16"],
    )
    assert cfg.optim.epochs == 9  # command line beats file
    assert cfg.optim.lr == 2e-4  # file beats preset
    assert cfg.model.pretrained is None
    assert cfg.optim.milestones == [3, 6]
    assert cfg.loss.triplet_margin == 0.3
    assert load_config(overrides=["optim.lr=3e-4"]).optim.lr == 3e-4  # YAML 1.1 reads 3e-4 as str


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=1", "unknown key optim.lrr"),
        ("optimizer.lr=1", "unknown section 'optimizer'"),
        ("optim.epochs=ten", "optim.epochs: expected an integer"),
        ("train.progress=maybe", "expected true/false"),
        ("model.drop_mode=random", "model.drop_mode must be one of batch, sample, none"),
        ("data.height=100", "divisible by 16"),
        ("optim.epochs", "section.key=value"),
    ],
)
def test_errors_name_the_problem(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("market1501", overrides=[override])


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'nope'; available: .*market1501"):
        load_config("nope")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(config_file=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(config_file=bad)


def test_yaml_round_trip():
    cfg = load_config("synthetic-demo", overrides=["optim.epochs=3"])
    import yaml

    again = apply_dict(Config(), yaml.safe_load(cfg.to_yaml()), "round trip")
    assert again == cfg


def test_parse_overrides_nesting():
    assert parse_overrides(["a.b=1", "a.c=x", "d.e=null"]) == {
        "a": {"b": 1, "c": "x"},
        "d": {"e": None},
    }


@pytest.mark.parametrize("mode", ["full", "truncated", "trapezoid"])
def test_eval_ap_mode_choices(mode):
    assert load_config(overrides=[f"eval.ap_mode={mode}"]).eval.ap_mode == mode


def test_eval_defaults_and_bad_values_are_refused():
    cfg = load_config()
    assert (cfg.eval.ap_mode, cfg.eval.aqe, cfg.eval.aqe_k, cfg.eval.aqe_alpha) == (
        "full",
        False,
        5,
        3.0,
    )
    with pytest.raises(ConfigError, match="eval.ap_mode must be one of"):
        load_config(overrides=["eval.ap_mode=cut"])
    with pytest.raises(ConfigError, match="eval.aqe_k"):
        load_config(overrides=["eval.aqe_k=0"])
    with pytest.raises(ConfigError, match="eval.aqe_alpha"):
        load_config(overrides=["eval.aqe_alpha=-1"])
