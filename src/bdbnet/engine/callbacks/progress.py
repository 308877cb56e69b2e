"""One line per epoch when the progress bars are off (``train.progress=false``, ``--quiet``,
logs of a batch job): otherwise a long run says nothing until its first evaluation."""

from __future__ import annotations

import logging

from bdbnet.engine.callbacks.base import Callback, TrainerView
from bdbnet.engine.results import EpochStats

log = logging.getLogger(__name__)


class EpochLine(Callback):
    """Log ``epoch N/M: loss ... (terms), images/s, lr, seconds`` on rank 0, at INFO through
    the ``bdbnet`` logger (the command line prints it; a library user's logging decides)."""

    def on_epoch_end(self, trainer: TrainerView, stats: EpochStats) -> None:
        if trainer.ctx.is_main:
            log.info(format_epoch_line(stats, getattr(trainer, "epochs", None)))


def format_epoch_line(stats: EpochStats, total: int | None = None) -> str:
    """The text of one epoch, e.g. ``epoch 3/60: loss 12.345 (global/softmax 6.1, ...)``.

    >>> from types import SimpleNamespace as S
    >>> format_epoch_line(S(epoch=3, loss={"total": 12.3456, "global/triplet": 0.5},
    ...                     images_per_second=251.4, lr=1e-4, seconds=12.26), 60)
    'epoch 3/60: loss 12.346 (global/triplet 0.5), 251 img/s, lr 1.0e-04, 12.3 s'
    """
    loss = dict(stats.loss)
    total_loss = loss.pop("total", None)
    terms = ", ".join(f"{k} {v:.3g}" for k, v in sorted(loss.items()))
    head = f"epoch {stats.epoch}" + (f"/{total}" if total else "")
    text = f"{head}: loss {total_loss:.3f}" if total_loss is not None else f"{head}:"
    text += f" ({terms})" if terms else ""
    return f"{text}, {stats.images_per_second:.0f} img/s, lr {stats.lr:.1e}, {stats.seconds:.1f} s"
