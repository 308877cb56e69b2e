"""The callback interface of :class:`~bdbnet.engine.trainer.Trainer`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bdbnet.engine.evaluator import EvalReport
    from bdbnet.engine.trainer import EpochStats, Trainer


class Callback:
    """Hooks called by the trainer, in the order the callbacks were given. All no-ops."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first epoch of :meth:`Trainer.fit` (after any resume)."""

    def on_log_step(self, trainer: Trainer, step: int, values: dict[str, float]) -> None:
        """Every ``log_every`` steps: the loss terms (averaged over ranks) and the LR."""

    def on_epoch_end(self, trainer: Trainer, stats: EpochStats) -> None:
        """After an epoch's last step and the LR schedule's step."""

    def on_evaluation(self, trainer: Trainer, record: dict[str, Any], report: EvalReport) -> None:
        """After an evaluation; ``record`` is ``{"epoch": N, **metrics}``."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """After the last epoch, also when :meth:`Trainer.fit` leaves with an error."""
