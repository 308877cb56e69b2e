"""Evaluation at ``train.eval_every`` epochs and after the last one, sharded over the ranks."""

from __future__ import annotations

from tqdm.auto import tqdm

from bdbnet.config import Config
from bdbnet.data.records import DatasetSplits
from bdbnet.engine.callbacks.base import Callback, TrainerView
from bdbnet.engine.results import EpochStats
from bdbnet.evaluation.report import EvalReport
from bdbnet.inference.dataset_eval import evaluate_model


class Evaluation(Callback):
    """Evaluate ``splits`` with ``cfg``'s test recipe every ``cfg.train.eval_every`` epochs
    (0: only at the end) and after the last epoch.

    Runs after :class:`~bdbnet.engine.callbacks.Checkpointing` in the callback list, so a
    failing evaluation never costs the epoch; a run resumed from an epoch whose evaluation did
    not finish evaluates it first.
    """

    def __init__(self, splits: DatasetSplits, cfg: Config) -> None:
        self.splits = splits
        self.cfg = cfg

    def due(self, epoch: int, last: int) -> bool:
        every = self.cfg.train.eval_every
        return bool(self.splits.query) and (epoch == last or (every > 0 and epoch % every == 0))

    def evaluate(self, trainer: TrainerView) -> EvalReport:
        return evaluate_model(
            trainer.model,
            self.splits,
            self.cfg,
            trainer.ctx.device,
            progress=trainer.progress,
            ctx=trainer.ctx,
            amp=trainer.amp,
            channels_last=trainer.channels_last,
        )

    def run(self, trainer: TrainerView) -> None:
        report = self.evaluate(trainer)
        record = {"epoch": trainer.epoch, **report.metrics}
        trainer.evaluations.append(record)
        trainer.result.last_report = report
        if trainer.progress:
            tqdm.write(f"epoch {trainer.epoch}: {report.summary()}")
        trainer.emit("on_evaluation", record, report)

    def on_fit_start(self, trainer: TrainerView) -> None:
        done = {e["epoch"] for e in trainer.evaluations}
        if trainer.epoch and self.due(trainer.epoch, trainer.epochs) and trainer.epoch not in done:
            self.run(trainer)

    def on_epoch_end(self, trainer: TrainerView, stats: EpochStats) -> None:
        if self.due(trainer.epoch, trainer.epochs):
            self.run(trainer)
