"""``train.keep_best``: also keep the checkpoint of the best evaluation as ``best.pt``.

The metric is measured on the *test* split (re-ID benchmarks have no validation split); this
is how the official BDB code selected its released models, and reports must call it that. With
several evaluation targets it follows one of them (``train.keep_best_target``, default the first),
and the best record names it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bdbnet.engine.callbacks.base import Callback, TrainerView
from bdbnet.engine.guard import save_checkpoint
from bdbnet.evaluation.report import EvalReport

# train.keep_best value -> the metric's name in evaluation records
BEST_METRICS = {"rank1": "Rank-1", "mAP": "mAP", "recall@1": "R@1"}


class KeepBest(Callback):
    """Write ``best.pt`` when ``metric`` on the followed target beats the best so far.

    ``target`` is the label of the evaluation records it follows (``None``: every record, as
    with one target). A best record of another target (a resumed run told to follow another
    one) does not count: the new target's first evaluation replaces it.
    """

    def __init__(
        self,
        output: str | Path,
        metric: str,
        metadata: dict[str, Any],
        target: str | None = None,
    ) -> None:
        if metric not in BEST_METRICS:
            raise ValueError(f"keep_best must be one of {', '.join(BEST_METRICS)}; got {metric!r}")
        self.path = Path(output) / "best.pt"
        self.key = BEST_METRICS[metric]
        self.metadata = metadata
        self.target = target

    def on_evaluation(
        self, trainer: TrainerView, record: dict[str, Any], report: EvalReport
    ) -> None:
        if self.target is not None and record.get("target", self.target) != self.target:
            return
        if self.key not in record:
            raise ValueError(
                f"train.keep_best: the evaluation reports {', '.join(report.metrics)}, "
                f"not {self.key}"
            )
        best = trainer.best
        if best is not None and best.get("target", record.get("target")) != record.get("target"):
            best = None  # the best of another target: this one starts afresh
        if best is not None and record[self.key] <= best["value"]:
            return
        trainer.best = {"metric": self.key, "value": record[self.key], **record}
        state = {**self.metadata, **trainer.state_dict()}
        if trainer.ctx.is_main:
            save_checkpoint(state, self.path)
