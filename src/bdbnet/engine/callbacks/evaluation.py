"""Evaluation at ``train.eval_every`` epochs and after the last one, sharded over the ranks, on
each of the run's test splits (``eval.targets``)."""

from __future__ import annotations

from collections.abc import Sequence

from tqdm.auto import tqdm

from bdbnet.config import Config
from bdbnet.data.records import DatasetSplits
from bdbnet.data.sources import EvalTarget
from bdbnet.engine.callbacks.base import Callback, TrainerView
from bdbnet.engine.results import EpochStats
from bdbnet.evaluation.report import EvalReport
from bdbnet.inference.dataset_eval import evaluate_model


class Evaluation(Callback):
    """Evaluate each target's test split with ``cfg``'s test recipe every
    ``cfg.train.eval_every`` epochs (0: only at the end) and after the last epoch.

    ``targets`` are :class:`~bdbnet.data.sources.EvalTarget` objects (or one
    :class:`DatasetSplits`, its own name as label); each evaluation appends one record per
    target, ``{"epoch", "target", **metrics}``, and emits ``on_evaluation`` for it, in the
    order given. Runs after :class:`~bdbnet.engine.callbacks.Checkpointing` in the callback
    list, so a failing evaluation never costs the epoch; a run resumed from an epoch whose
    evaluation did not finish evaluates the targets it has no record of first.
    """

    def __init__(self, targets: Sequence[EvalTarget] | DatasetSplits, cfg: Config) -> None:
        if isinstance(targets, DatasetSplits):
            targets = [EvalTarget(targets.name, targets)]
        self.targets = [t for t in targets if t.splits.query]
        self.cfg = cfg

    def due(self, epoch: int, last: int) -> bool:
        every = self.cfg.train.eval_every
        return bool(self.targets) and (epoch == last or (every > 0 and epoch % every == 0))

    def evaluate(self, trainer: TrainerView, target: EvalTarget | None = None) -> EvalReport:
        """The current model's report on ``target`` (default: the first)."""
        target = target or self.targets[0]
        return evaluate_model(
            trainer.model,
            target.splits,
            self.cfg,
            trainer.ctx.device,
            progress=trainer.progress,
            ctx=trainer.ctx,
            amp=trainer.amp,
            channels_last=trainer.channels_last,
        )

    def run(self, trainer: TrainerView, targets: Sequence[EvalTarget] | None = None) -> None:
        """Evaluate ``targets`` (default: every target), recording each as it finishes."""
        for target in self.targets if targets is None else targets:
            report = self.evaluate(trainer, target)
            record = {"epoch": trainer.epoch, "target": target.label, **report.metrics}
            trainer.evaluations.append(record)
            if target is self.targets[0]:
                trainer.result.last_report = report
            if trainer.progress:
                where = f" on {target.label}" if len(self.targets) > 1 else ""
                tqdm.write(f"epoch {trainer.epoch}{where}: {report.summary()}")
            trainer.emit("on_evaluation", record, report)

    def missing(self, trainer: TrainerView) -> list[EvalTarget]:
        """The targets the current epoch has no record of (a run stopped during its
        evaluation; records of before targets existed count for all)."""
        records = [e for e in trainer.evaluations if e["epoch"] == trainer.epoch]
        if any("target" not in e for e in records):
            return []
        done = {e["target"] for e in records}
        return [t for t in self.targets if t.label not in done]

    def on_fit_start(self, trainer: TrainerView) -> None:
        if trainer.epoch and self.due(trainer.epoch, trainer.epochs):
            missing = self.missing(trainer)
            if missing:
                self.run(trainer, missing)

    def on_epoch_end(self, trainer: TrainerView, stats: EpochStats) -> None:
        if self.due(trainer.epoch, trainer.epochs):
            self.run(trainer)
