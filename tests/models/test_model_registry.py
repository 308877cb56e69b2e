import pytest
import torch
from torch import nn

from bdbnet.config import ModelConfig
from bdbnet.errors import ConfigError
from bdbnet.models import BDBNet, create_model, list_models, model_kwargs_from_config, registry


def test_bdb_is_registered_and_built_from_the_model_config():
    assert "bdb" in list_models()
    kwargs = model_kwargs_from_config(ModelConfig(backbone="resnet18", drop_height_ratio=0.5))
    assert kwargs["backbone"] == "resnet18" and kwargs["drop_height_ratio"] == 0.5
    assert "pretrained" not in kwargs and "name" not in kwargs  # not architecture
    model = create_model("bdb", 3, pretrained=None, **kwargs)
    assert isinstance(model, BDBNet) and model.model_name == "bdb"


def test_a_new_variant_is_one_registration(monkeypatch):
    monkeypatch.setattr(registry.MODELS, "entries", dict(registry.MODELS.entries))

    @registry.register_model("tiny-linear")
    class TinyLinear(nn.Module):
        def __init__(self, num_classes: int, global_dim: int = 8) -> None:
            super().__init__()
            self.head = nn.Linear(global_dim, max(num_classes, 1))

    kwargs = model_kwargs_from_config(ModelConfig(name="tiny-linear", global_dim=5))
    assert kwargs == {"global_dim": 5}  # only what its constructor takes
    assert create_model("tiny-linear", 2, **kwargs).head.weight.shape == torch.Size([2, 5])
    with pytest.raises(ValueError, match="already registered"):
        registry.register_model("tiny-linear")(nn.Identity)


def test_unknown_name_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown model.name 'nope'; registered: bdb"):
        create_model("nope", 2)
