"""The epoch line of runs without progress bars."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from bdbnet.engine.callbacks.progress import EpochLine, format_epoch_line
from bdbnet.engine.trainer import EpochStats

STATS = EpochStats(
    epoch=2,
    loss={"total": 3.14159, "global/softmax": 2.0, "drop/triplet": 0.25},
    images_per_second=99.6,
    lr=3.5e-4,
    seconds=1.04,
)


def test_the_line_names_epoch_losses_speed_and_lr():
    assert format_epoch_line(STATS, 10) == (
        "epoch 2/10: loss 3.142 (drop/triplet 0.25, global/softmax 2), 100 img/s, lr 3.5e-04, 1.0 s"
    )
    assert format_epoch_line(STATS).startswith("epoch 2: loss 3.142")


def test_only_rank_0_logs_it(caplog):
    with caplog.at_level(logging.INFO, logger="bdbnet"):
        for is_main in (True, False):
            trainer = SimpleNamespace(ctx=SimpleNamespace(is_main=is_main), epochs=10)
            EpochLine().on_epoch_end(trainer, STATS)
    assert [r.getMessage() for r in caplog.records] == [format_epoch_line(STATS, 10)]
