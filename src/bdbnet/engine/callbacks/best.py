"""``train.keep_best``: also keep the checkpoint of the best evaluation as ``best.pt``.

The metric is measured on the *test* split (re-ID benchmarks have no validation split); this
is how the official BDB code selected its released models, and reports must call it that.
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
    def __init__(self, output: str | Path, metric: str, metadata: dict[str, Any]) -> None:
        if metric not in BEST_METRICS:
            raise ValueError(f"keep_best must be one of {', '.join(BEST_METRICS)}; got {metric!r}")
        self.path = Path(output) / "best.pt"
        self.key = BEST_METRICS[metric]
        self.metadata = metadata

    def on_evaluation(
        self, trainer: TrainerView, record: dict[str, Any], report: EvalReport
    ) -> None:
        if self.key not in record:
            raise ValueError(
                f"train.keep_best: the evaluation reports {', '.join(report.metrics)}, "
                f"not {self.key}"
            )
        best = trainer.best
        if best is not None and record[self.key] <= best["value"]:
            return
        trainer.best = {"metric": self.key, "value": record[self.key], **record}
        state = {**self.metadata, **trainer.state_dict()}
        if trainer.ctx.is_main:
            save_checkpoint(state, self.path)
