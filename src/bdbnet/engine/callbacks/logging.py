"""``metrics.jsonl`` and TensorBoard, written by rank 0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bdbnet.engine.callbacks.base import Callback, TrainerView
from bdbnet.engine.metrics_log import MetricsLogger, truncate_metrics
from bdbnet.engine.results import EpochStats
from bdbnet.evaluation.report import EvalReport


class MetricsLogging(Callback):
    """Log train steps, epochs and evaluations. On resume, lines after the checkpoint's epoch
    (written by the interrupted run) are dropped first, so every step appears once.

    Each evaluation line names its ``target``; with ``several_targets`` their TensorBoard
    curves are apart (``eval/<target>/mAP``), else ``eval/mAP`` as for one test split.
    """

    def __init__(
        self, output: str | Path, tensorboard: bool = True, several_targets: bool = False
    ) -> None:
        self.output = Path(output)
        self.tensorboard = tensorboard
        self.several_targets = several_targets
        self.logger: MetricsLogger | None = None

    def on_fit_start(self, trainer: TrainerView) -> None:
        truncate_metrics(self.output / "metrics.jsonl", trainer.epoch)
        self.logger = MetricsLogger(
            self.output, tensorboard=self.tensorboard, purge_step=trainer.step or None
        )

    def on_log_step(self, trainer: TrainerView, step: int, values: dict[str, float]) -> None:
        assert self.logger is not None
        self.logger.log("train", step, values, epoch=trainer.epoch + 1, global_step=step)

    def on_epoch_end(self, trainer: TrainerView, stats: EpochStats) -> None:
        assert self.logger is not None
        values = {
            **stats.loss,
            "lr": stats.lr,
            "images_per_second": stats.images_per_second,
            "seconds": stats.seconds,
        }
        self.logger.log("epoch", stats.epoch, values, epoch=stats.epoch, global_step=trainer.step)

    def on_evaluation(
        self, trainer: TrainerView, record: dict[str, Any], report: EvalReport
    ) -> None:
        assert self.logger is not None
        epoch, target = record["epoch"], record.get("target")
        values = {"target": target, **report.metrics} if target else report.metrics
        group = target if self.several_targets else None
        self.logger.log("eval", epoch, values, epoch=epoch, global_step=trainer.step, group=group)

    def on_fit_end(self, trainer: TrainerView) -> None:
        if self.logger is not None:
            self.logger.close()
            self.logger = None
