"""Every model file -> a model: our checkpoints, exported safetensors weights and the official
BDB ``*.pth.tar``.

A checkpoint is a plain dict of tensors and Python primitives, so it loads with
``torch.load(weights_only=True)``; training writes it atomically
(:func:`bdbnet.files.atomic_save`). :func:`checkpoint_metadata` is what makes it
self-describing (model name and arguments, preprocessing, config), so it is rebuilt without any
other file.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from bdbnet.config import Config, apply_dict, load_config
from bdbnet.models.official import (
    CheckpointError,
    load_official_checkpoint,
    load_weights,
    safe_torch_load,
)
from bdbnet.models.preprocess import Preprocessing
from bdbnet.models.registry import create_model, model_kwargs_from_config
from bdbnet.models.weights import is_safetensors_file, read_safetensors

FORMAT = "bdbnet-checkpoint"
VERSION = 1


def checkpoint_metadata(cfg: Config, num_classes: int, dataset: str = "") -> dict[str, Any]:
    """What makes a checkpoint self-describing, beside the training state: the model's registry
    name and constructor arguments, its test preprocessing (:class:`Preprocessing`), the
    config and the dataset."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "model_name": cfg.model.name,
        "model_kwargs": model_kwargs_from_config(cfg.model),
        "num_classes": num_classes,
        "config": cfg.to_dict(),
        "preprocess": Preprocessing.from_data_config(cfg.data).to_dict(),
        "dataset": dataset,
    }


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load one of our checkpoints (safely) and check its format."""
    obj = safe_torch_load(path)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        hint = (
            " (an official BDB .pth.tar? use load_official_checkpoint)"
            if "state_dict" in (obj if isinstance(obj, dict) else {})
            else ""
        )
        raise CheckpointError(f"{path}: not a bdbnet checkpoint{hint}")
    if obj.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {obj['version']} is newer than this bdbnet "
            f"({VERSION}); upgrade bdbnet"
        )
    return obj


def is_official_checkpoint(obj: Any) -> bool:
    """Official BDB files are ``{'state_dict': {...}, 'epoch': N}`` without our format tag."""
    return isinstance(obj, dict) and "state_dict" in obj and obj.get("format") != FORMAT


def load_trained_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, Any]:
    """An eval-mode model and its :class:`~bdbnet.config.Config` from one of our checkpoints,
    exported ``.safetensors`` weights (``bdbnet export --format safetensors``) or an official
    BDB ``*.pth.tar`` (which gets the Market-1501 preset's test preprocessing, 384x128).

    ``model.preprocess`` is the file's preprocessing spec (files written before it was
    stored: the one of their config's recipe).
    """
    if is_safetensors_file(path):
        weights, state = read_safetensors(path)
        state = {**state, "model": weights}
    else:
        obj = safe_torch_load(path)
        if is_official_checkpoint(obj):
            model, cfg = load_official_checkpoint(path), load_config("market1501")
            model.preprocess = Preprocessing.from_data_config(cfg.data)
            return model.to(device).eval(), cfg
        state = load_checkpoint(path)
    missing = [k for k in ("config", "model", "model_kwargs", "num_classes") if k not in state]
    if missing:
        raise CheckpointError(
            f"{path}: incomplete bdbnet checkpoint, no {', '.join(missing)} entry; "
            "write it again with bdbnet train"
        )
    cfg = apply_dict(Config(), state["config"], f"{path} (config)")
    name = state.get("model_name", "bdb")  # checkpoints before the registry: BDB
    try:
        model = create_model(name, state["num_classes"], pretrained=None, **state["model_kwargs"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"{path}: model_kwargs do not describe a {name!r} model ({err})"
        ) from err
    load_weights(model, state["model"], path)
    spec = state.get("preprocess")
    model.preprocess = (
        Preprocessing.from_dict(spec, str(path))
        if spec
        else Preprocessing.from_data_config(cfg.data)
    )
    return model.to(device).eval(), cfg
