"""Typed configuration: dataclasses, YAML presets for the paper's recipes, ``key=value`` overrides.

Resolution order: defaults < preset (``bdbnet/presets/<name>.yaml``) < ``--config FILE`` <
command-line ``section.key=value`` overrides. Unknown keys are errors, so a typo never silently
trains with a default.

Example:
    >>> cfg = load_config(preset="market1501", overrides=["optim.epochs=10"])
    >>> cfg.data.height, cfg.model.drop_height_ratio, cfg.optim.epochs
    (384, 0.3, 10)
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bdbnet.errors import ConfigError

#: ``train.amp`` and every ``--amp``: autocast precision (auto: bf16 where the hardware computes
#: it natively, fp32 elsewhere); :mod:`bdbnet.runtime.precision` gives each its meaning.
AMP_CHOICES = ("none", "bf16", "fp16", "auto")
#: Every ``--runtime``: which inference runtime runs a model (:mod:`bdbnet.inference.runtimes`).
RUNTIME_CHOICES = ("auto", "torch", "onnxruntime", "openvino")


@dataclass
class ModelConfig:
    name: str = "bdb"  # model registry name (bdbnet.models.registry); recorded in checkpoints
    backbone: str = "resnet50"  # the paper; resnet18 / resnet34 for quick CPU experiments
    pretrained: str | None = "imagenet"  # "imagenet", a path, or null
    last_stride: int = 1
    drop_height_ratio: float = 0.3
    drop_width_ratio: float = 1.0
    drop_mode: str = "batch"  # batch | sample | none
    branches: str = "both"  # both | global | drop
    global_dim: int = 512
    drop_dim: int = 1024


@dataclass
class DataConfig:
    dataset: str = "market1501"
    root: str = ""
    sources: list[str] = field(default_factory=list)  # NAME[=ROOT] each; [] = dataset alone
    combine_all: bool = False  # also train on the sources' query and gallery images
    recipe: str = "reid"  # reid | retrieval
    height: int = 384
    width: int = 128
    flip: bool = True
    cutout_prob: float = 0.5
    cutout_size: int = 64
    erasing_prob: float = 0.5  # retrieval recipe
    resize: int = 256  # retrieval recipe: pad to square, resize, random crop to `width`
    test_resize: int = 256
    test_pad_to_square: bool = True  # retrieval recipe; false for CARS196 (the official code)
    num_identities: int = 32  # P
    num_instances: int = 4  # K
    workers: int = 4
    cache_images: bool = False
    pipeline: str = "pil"  # pil (DataLoader workers) | tensor (bdbnet.data.pipelines.tensor)
    cache: str = "none"  # none | ram | device (tensor only); pil with ram: as cache_images
    test_batch_size: int = 128


@dataclass
class LossConfig:
    triplet_margin: float | None = None  # None: soft margin
    label_smoothing: float = 0.1
    triplet_weight: float = 1.0
    softmax_weight: float = 1.0


@dataclass
class OptimConfig:
    optimizer: str = "adam"
    lr: float = 1e-3  # peak learning rate, reached at the end of the warm-up
    weight_decay: float = 5e-4
    epochs: int = 400
    warmup_epochs: int = 50  # lr = lr * (epoch // warmup_step + 1) / (warmup_epochs // warmup_step)
    warmup_step: int = 5
    milestones: list[int] = field(default_factory=lambda: [200, 300])
    gamma: float = 0.1
    nesterov: bool = False  # SGD only; the official code's SGD has none (momentum 0.9)


@dataclass
class TrainConfig:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "none"  # none | bf16 | fp16 | auto (bf16 where the hardware computes it natively)
    channels_last: bool = False
    compile: bool = False  # torch.compile the training network (opt-in: minutes to compile)
    deterministic: bool = False
    eval_every: int = 50  # epochs; 0 = only at the end
    checkpoint_every: int = 1  # epochs between checkpoint writes (last.pt)
    keep_checkpoints: list[int] = field(default_factory=list)  # epochs kept as epoch_N.pt
    log_every: int = 10  # iterations between metrics.jsonl lines
    tensorboard: bool = True
    progress: bool = True
    # Distributed / DataParallel semantics (README "Multi-GPU and multi-node"):
    loss_scope: str = "global"  # global: loss over the whole P x K batch; local: per process
    sync_bn: bool = False  # BatchNorm statistics over all processes (DDP only)
    replicas: int = 1  # chunks per process, each with its own BN statistics and drop rectangle
    keep_best: str = "none"  # none | rank1 | mAP | recall@1: also keep best.pt (test split!)
    keep_best_target: str = ""  # the eval.targets entry keep_best follows ("": the first)
    dist_timeout: float = 1800.0  # seconds a collective waits for a stalled rank (torchrun)


@dataclass
class EvalConfig:
    metric: str = "euclidean"  # euclidean | cosine
    flip: bool = False
    rerank: bool = False
    max_rank: int = 50
    recall_ks: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    # AP reported as mAP: full | truncated (the official BDB evaluator: cut at max_rank, divided
    # by all positives) | trapezoid (Market-1501 MATLAB); all three are always computed.
    ap_mode: str = "full"
    aqe: bool = False  # alpha-query expansion (fast-reid's AQE) of query and gallery features
    aqe_k: int = 5
    aqe_alpha: float = 3.0
    # Test splits evaluated, each in its own row: NAME[=ROOT] (names alone at data.root);
    # [] = the training dataset's own (the first source's). A model trained on A, tested on B.
    targets: list[str] = field(default_factory=list)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def list_presets() -> list[str]:
    """Names of the bundled presets."""
    folder = resources.files("bdbnet") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_path(name: str) -> Any:
    path = resources.files("bdbnet") / "presets" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(list_presets())}")
    return path


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check/convert a YAML value against a dataclass field type."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError("; ".join(errors))
    if origin is list:
        (item,) = typing.get_args(annotation)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, item, where) for v in value]
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {annotation}")


def apply_dict(cfg: Config, data: dict[str, Any], source: str) -> Config:
    """Merge a nested ``{section: {key: value}}`` mapping into ``cfg`` (in place)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    for section_name, values in data.items():
        if section_name not in {f.name for f in dataclasses.fields(cfg)}:
            raise ConfigError(f"{source}: unknown section {section_name!r}")
        section = getattr(cfg, section_name)
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: section {section_name!r} must be a mapping")
        hints = typing.get_type_hints(type(section))
        for key, value in values.items():
            if key not in hints:
                known = ", ".join(f.name for f in dataclasses.fields(section))
                raise ConfigError(f"{source}: unknown key {section_name}.{key} (known: {known})")
            setattr(section, key, _coerce(value, hints[key], f"{source}: {section_name}.{key}"))
    return cfg


def parse_overrides(overrides: list[str]) -> dict[str, dict[str, Any]]:
    """``["optim.lr=3e-4", "model.pretrained=null"]`` -> nested dict (values parsed as YAML)."""
    nested: dict[str, dict[str, Any]] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or key.count(".") != 1:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        section, name = key.split(".")
        nested.setdefault(section, {})[name] = yaml.safe_load(raw) if raw != "" else ""
    return nested


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML ({err})") from err
    return data


def load_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
) -> Config:
    """Build a :class:`Config` from a preset, a YAML file and overrides (later wins)."""
    cfg = Config()
    if preset is not None:
        with resources.as_file(preset_path(preset)) as path:
            apply_dict(cfg, load_yaml(path), f"preset {preset}")
    if config_file is not None:
        apply_dict(cfg, load_yaml(config_file), str(config_file))
    if overrides:
        apply_dict(cfg, parse_overrides(overrides), "command line")
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Cross-field checks that the type system cannot express."""
    choices = {
        "model.backbone": (cfg.model.backbone, ("resnet50", "resnet34", "resnet18")),
        "model.drop_mode": (cfg.model.drop_mode, ("batch", "sample", "none")),
        "model.branches": (cfg.model.branches, ("both", "global", "drop")),
        "data.recipe": (cfg.data.recipe, ("reid", "retrieval")),
        "data.pipeline": (cfg.data.pipeline, ("pil", "tensor")),
        "data.cache": (cfg.data.cache, ("none", "ram", "device")),
        "train.amp": (cfg.train.amp, AMP_CHOICES),
        "eval.metric": (cfg.eval.metric, ("euclidean", "cosine")),
        "optim.optimizer": (cfg.optim.optimizer, ("adam", "adamw", "sgd")),
        "train.loss_scope": (cfg.train.loss_scope, ("global", "local")),
        "train.keep_best": (cfg.train.keep_best, ("none", "rank1", "mAP", "recall@1")),
        "eval.ap_mode": (cfg.eval.ap_mode, ("full", "truncated", "trapezoid")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")
    # Numeric ranges: key -> (lowest, highest, lowest excluded); None = unbounded. Every number
    # must also be finite; lists are checked item by item and None (e.g. soft margin) is skipped.
    ranges: dict[str, tuple[float | None, float | None, bool]] = {
        "model.last_stride": (1, 2, False),
        "model.drop_height_ratio": (0, 1, False),
        "model.drop_width_ratio": (0, 1, False),
        "model.global_dim": (1, None, False),
        "model.drop_dim": (1, None, False),
        "data.height": (16, None, False),
        "data.width": (16, None, False),
        "data.cutout_prob": (0, 1, False),
        "data.cutout_size": (0, None, False),
        "data.erasing_prob": (0, 1, False),
        "data.resize": (1, None, False),
        "data.test_resize": (1, None, False),
        "data.num_identities": (2, None, False),  # the triplet loss needs negatives
        "data.num_instances": (1, None, False),
        "data.workers": (0, None, False),
        "data.test_batch_size": (1, None, False),
        "loss.triplet_margin": (0, None, False),
        "loss.label_smoothing": (0, 1, False),
        "loss.triplet_weight": (0, None, False),
        "loss.softmax_weight": (0, None, False),
        "optim.lr": (0, None, True),
        "optim.weight_decay": (0, None, False),
        "optim.epochs": (1, None, False),
        "optim.warmup_epochs": (0, None, False),
        "optim.warmup_step": (1, None, False),
        "optim.milestones": (1, None, False),
        "optim.gamma": (0, None, True),
        "train.eval_every": (0, None, False),
        "train.checkpoint_every": (1, None, False),
        "train.keep_checkpoints": (1, None, False),
        "train.log_every": (1, None, False),
        "train.replicas": (1, None, False),
        "train.dist_timeout": (0, None, True),
        "eval.max_rank": (1, None, False),
        "eval.recall_ks": (1, None, False),
    }
    for key, (low, high, open_low) in ranges.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            below = low is not None and (item <= low if open_low else item < low)
            if not math.isfinite(item) or below or (high is not None and item > high):
                bounds = [f"{'>' if open_low else '>='} {low}" if low is not None else ""]
                bounds += [f"<= {high}" if high is not None else ""]
                kind = "an integer" if isinstance(item, int) else "a finite number"
                expected = f"{kind} {' and '.join(b for b in bounds if b)}".strip()
                raise ConfigError(f"{key} must be {expected}; got {value!r}")
    if cfg.data.height % 16 or cfg.data.width % 16:
        raise ConfigError(
            f"input size {cfg.data.height}x{cfg.data.width} must be divisible by 16 "
            "(the network's total stride with last stride 1)"
        )
    if cfg.data.cache == "device" and cfg.data.pipeline != "tensor":
        raise ConfigError(
            "data.cache=device needs data.pipeline=tensor (allowed with pil: none, ram)"
        )
    if cfg.optim.warmup_epochs and cfg.optim.warmup_epochs % cfg.optim.warmup_step:
        raise ConfigError("optim.warmup_epochs must be a multiple of optim.warmup_step")
    if cfg.eval.aqe_k < 1:
        raise ConfigError(f"eval.aqe_k must be >= 1; got {cfg.eval.aqe_k}")
    if cfg.eval.aqe_alpha < 0:
        raise ConfigError(f"eval.aqe_alpha must be >= 0; got {cfg.eval.aqe_alpha}")
