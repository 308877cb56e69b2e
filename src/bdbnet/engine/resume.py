"""``bdbnet train --resume``: the run continues with the config it was started with.

The run's own ``config.yaml`` (or, without it, the config ``last.pt`` records) is the base;
``key=value`` overrides on the resuming command line
may change only what does not change what is being trained: how long (``optim.epochs``,
extended), how often things happen (evaluation, checkpoints, logging), where and how fast it
runs (device, precision, workers, data root) and how it is evaluated (``eval.*``). Any other
change is refused naming the key, so ``config.yaml`` and the checkpoint never claim a recipe
that did not run.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from bdbnet.config import Config, apply_dict, load_yaml, parse_overrides, validate
from bdbnet.errors import ConfigError

# Keys an override may change on resume (besides every eval.* key).
RESUMABLE_KEYS = frozenset(
    {
        "optim.epochs",
        "train.eval_every",
        "train.checkpoint_every",
        "train.keep_checkpoints",
        "train.keep_best",
        "train.keep_best_target",
        "train.log_every",
        "train.progress",
        "train.tensorboard",
        "train.device",
        "train.dist_timeout",
        "train.amp",
        "train.channels_last",
        "train.compile",
        "data.workers",
        "data.test_batch_size",
        "data.cache_images",
        "data.root",
    }
)


def resumable(key: str) -> bool:
    return key in RESUMABLE_KEYS or key.startswith("eval.")


def flat(cfg: Config) -> dict[str, object]:
    """``{"section.key": value}`` of every config field."""
    return {
        f"{section.name}.{f.name}": getattr(getattr(cfg, section.name), f.name)
        for section in dataclasses.fields(cfg)
        for f in dataclasses.fields(getattr(cfg, section.name))
    }


def stored_config(output: str | Path) -> tuple[Config, Path] | None:
    """The config a run in ``output`` was started with, and where it was read: its
    ``config.yaml``, or, when that is gone (a ``last.pt`` copied elsewhere), the config every
    checkpoint records. ``None`` when ``output`` holds neither."""
    path = Path(output) / "config.yaml"
    if path.is_file():
        return apply_dict(Config(), load_yaml(path), str(path)), path
    checkpoint = Path(output) / "last.pt"
    if not checkpoint.is_file():
        return None
    from bdbnet.models.loading import load_checkpoint

    recorded = load_checkpoint(checkpoint).get("config")
    if not isinstance(recorded, dict):
        raise ConfigError(
            f"--resume: {path} is missing and {checkpoint} records no config; put the run's "
            "config.yaml back, or start a new run with another --output"
        )
    return apply_dict(Config(), recorded, f"{checkpoint} (config)"), checkpoint


def resume_config(output: str | Path, overrides: list[str]) -> Config | None:
    """The config a resumed run in ``output`` trains with: the one it was started with
    (:func:`stored_config`) plus the allowed ``overrides``; ``None`` when ``output`` holds no
    run yet. Training then writes it as the run's ``config.yaml`` again.

    Raises :class:`ConfigError` naming the first override that would change what was trained,
    or that would shorten the run.
    """
    found = stored_config(output)
    if found is None:
        return None
    stored, path = found
    cfg = apply_dict(copy.deepcopy(stored), parse_overrides(overrides), "command line")
    validate(cfg)
    before, after = flat(stored), flat(cfg)
    for key, value in after.items():
        if value == before[key]:
            continue
        if not resumable(key):
            raise ConfigError(
                f"--resume: {key}={value!r} would change what was trained ({path} has "
                f"{before[key]!r}); drop the override, or start a new run with another --output"
            )
    if cfg.optim.epochs < stored.optim.epochs:
        raise ConfigError(
            f"--resume: optim.epochs can only be extended ({path} has {stored.optim.epochs}); "
            f"got {cfg.optim.epochs}"
        )
    return cfg
