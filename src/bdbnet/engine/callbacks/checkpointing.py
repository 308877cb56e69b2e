"""``last.pt`` (and ``epoch_N.pt``): written atomically by rank 0 at the end of an epoch,
*before* its evaluation, and again after the evaluation so that its record is kept too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bdbnet.engine.callbacks.base import Callback, TrainerView
from bdbnet.engine.guard import save_checkpoint
from bdbnet.engine.results import EpochStats
from bdbnet.evaluation.report import EvalReport
from bdbnet.runtime.distributed import barrier


class Checkpointing(Callback):
    """Args:
    output: The run folder.
    metadata: Stored beside the training state (config, model name and arguments,
        preprocessing, dataset), so a checkpoint is self-describing.
    every: Epochs between writes of ``last.pt``; the last epoch is always written.
    keep: Epochs also kept as ``epoch_N.pt``.
    """

    def __init__(
        self,
        output: str | Path,
        metadata: dict[str, Any],
        every: int = 1,
        keep: tuple[int, ...] | list[int] = (),
    ) -> None:
        self.output = Path(output)
        self.metadata = metadata
        self.every = max(every, 1)
        self.keep = set(keep)

    @property
    def path(self) -> Path:
        return self.output / "last.pt"

    def save(self, trainer: TrainerView) -> Path | None:
        """Write ``last.pt`` (collective: gathers every rank's RNG state; rank 0 writes, and no
        rank goes on before the file is in place, so a restarted group finds it)."""
        state = {**self.metadata, **trainer.state_dict()}
        if trainer.ctx.is_main:
            save_checkpoint(state, self.path)
            if trainer.epoch in self.keep:
                save_checkpoint(state, self.output / f"epoch_{trainer.epoch}.pt")
        barrier(trainer.ctx)
        trainer.result.checkpoint = self.path
        trainer.result.checkpoint_epoch = trainer.epoch
        return self.path

    def due(self, trainer: TrainerView) -> bool:
        """Whether this epoch's state goes to ``last.pt`` (the cadence, and the last epoch)."""
        return trainer.epoch % self.every == 0 or trainer.epoch == trainer.epochs

    def on_epoch_end(self, trainer: TrainerView, stats: EpochStats) -> None:
        if self.due(trainer):
            self.save(trainer)

    def on_evaluation(
        self, trainer: TrainerView, record: dict[str, Any], report: EvalReport
    ) -> None:
        # Only when this epoch's checkpoint exists: never write one at an epoch of no cadence.
        if self.due(trainer):
            self.save(trainer)
