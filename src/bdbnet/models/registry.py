"""Model registry: a name -> constructor table, so a new model variant is one file and its test.

A registered constructor takes ``num_classes`` and keyword arguments; the arguments a run uses
come from the ``model`` section of the config (every field whose name the constructor accepts),
and a checkpoint records the name and those arguments so the model can be rebuilt without the
config file.

Example:
    >>> from bdbnet.config import ModelConfig
    >>> "bdb" in list_models()
    True
    >>> kwargs = model_kwargs_from_config(ModelConfig(backbone="resnet18", pretrained=None))
    >>> kwargs["backbone"], "pretrained" in kwargs
    ('resnet18', False)
    >>> create_model("bdb", num_classes=4, pretrained=None, **kwargs).feature_dim
    1536
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from bdbnet.errors import ConfigError
from bdbnet.registry import Registry

ModelFactory = Callable[..., nn.Module]

MODELS: Registry[ModelFactory] = Registry(
    "model",
    lambda name, known: ConfigError(f"unknown model.name {name!r}; registered: {', '.join(known)}"),
)

# Config fields that describe how weights are obtained, not the architecture: never stored as
# constructor arguments (a checkpoint already holds the weights).
_NOT_ARCHITECTURE = ("name", "pretrained")


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Class or function decorator: make ``name`` buildable by :func:`create_model`."""

    return MODELS.register(name)


def list_models() -> list[str]:
    """Names of the registered models."""
    return MODELS.names()


def get_model_factory(name: str) -> ModelFactory:
    return MODELS.get(name)


def model_kwargs_from_config(model_cfg: Any, name: str | None = None) -> dict[str, Any]:
    """The constructor arguments of model ``name`` (default ``model_cfg.name``) found in the
    ``model`` config section, without ``num_classes`` and ``pretrained``."""
    factory = get_model_factory(name or model_cfg.name)
    accepted = inspect.signature(factory).parameters
    values = dataclasses.asdict(model_cfg)
    return {
        key: value
        for key, value in values.items()
        if key in accepted and key not in _NOT_ARCHITECTURE
    }


def create_model(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``; records ``model_name`` on the instance."""
    model = get_model_factory(name)(num_classes=num_classes, **kwargs)
    model.model_name = name
    return model
