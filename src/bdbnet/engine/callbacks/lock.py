"""Gives the run folder's lock (:mod:`bdbnet.engine.run_lock`, taken by rank 0 when the run is
built) back when training ends, also when it ends with an error."""

from __future__ import annotations

from pathlib import Path

from bdbnet.engine.callbacks.base import Callback, TrainerView
from bdbnet.engine.run_lock import release_run_lock


class RunLockRelease(Callback):
    def __init__(self, output: str | Path) -> None:
        self.output = Path(output)

    def on_fit_end(self, trainer: TrainerView) -> None:
        release_run_lock(self.output)
