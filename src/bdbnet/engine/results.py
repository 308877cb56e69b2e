"""What a training run reports: one record per epoch and the run's result. Kept apart from the
trainer so that callbacks can name them without importing the loop that calls them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bdbnet.evaluation.report import EvalReport


@dataclass
class EpochStats:
    epoch: int
    loss: dict[str, float]
    images_per_second: float
    lr: float
    seconds: float


@dataclass
class TrainResult:
    """What :meth:`~bdbnet.engine.trainer.Trainer.fit` returns: per-epoch stats and every
    evaluation."""

    epochs: list[EpochStats] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Path | None = None
    # The epoch ``checkpoint`` holds (the resumed one until this run writes its own).
    checkpoint_epoch: int | None = None
    # The newest evaluation of this process, with its features (not stored in checkpoints).
    last_report: EvalReport | None = None
    # train.keep_best: {"metric", "value", "epoch", **metrics} of best.pt (test-split selected)
    best: dict[str, Any] | None = None
