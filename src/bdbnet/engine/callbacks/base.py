"""The callback interface of :class:`~bdbnet.engine.trainer.Trainer`, and what a callback may
see of the trainer (:class:`TrainerView`): a protocol, so that callbacks never import the loop
that calls them."""

from __future__ import annotations

from typing import Any, Protocol

import torch

from bdbnet.engine.results import EpochStats, TrainResult
from bdbnet.evaluation.report import EvalReport
from bdbnet.runtime.distributed import DistContext


class TrainerView(Protocol):
    """The trainer's state that callbacks read and update."""

    model: torch.nn.Module
    ctx: DistContext
    epoch: int  # completed epochs
    epochs: int  # epochs of the whole run
    step: int  # completed optimisation steps
    amp: str
    channels_last: bool
    progress: bool
    evaluations: list[dict[str, Any]]
    best: dict[str, Any] | None
    result: TrainResult

    def state_dict(self) -> dict[str, Any]: ...

    def emit(self, hook: str, *args: Any) -> None: ...


class Callback:
    """Hooks called by the trainer, in the order the callbacks were given. All no-ops."""

    def on_fit_start(self, trainer: TrainerView) -> None:
        """Before the first epoch of :meth:`Trainer.fit` (after any resume)."""

    def on_log_step(self, trainer: TrainerView, step: int, values: dict[str, float]) -> None:
        """Every ``log_every`` steps: the loss terms (averaged over ranks) and the LR."""

    def on_epoch_end(self, trainer: TrainerView, stats: EpochStats) -> None:
        """After an epoch's last step and the LR schedule's step."""

    def on_evaluation(
        self, trainer: TrainerView, record: dict[str, Any], report: EvalReport
    ) -> None:
        """After an evaluation; ``record`` is ``{"epoch": N, **metrics}``."""

    def on_fit_end(self, trainer: TrainerView) -> None:
        """After the last epoch, also when :meth:`Trainer.fit` leaves with an error."""
