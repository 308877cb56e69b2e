"""StallWatch on a real in-process store (torch's HashStore) with a hand-driven clock: a frozen
rank, a live rank left behind, a group that is merely busy, who reports, and the timeout error."""

from __future__ import annotations

import logging

import pytest
import torch.distributed as dist

from bdbnet.errors import TrainingError
from bdbnet.runtime.stall import StallWatch, timeout_error


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def group(world: int, timeout: float = 60.0):
    """``world`` watches sharing one store and one clock (interval 3 s, frozen after 12 s,
    warning after 30 s of stall)."""
    store, clock = dist.HashStore(), Clock()
    watches = [StallWatch(store, r, world, timeout, clock=clock) for r in range(world)]
    return watches, clock


def advance(clock: Clock, watches: list[StallWatch], seconds: float) -> None:
    """Let ``seconds`` pass in steps of the heartbeat interval, every watch checking."""
    for _ in range(round(seconds / watches[0].interval)):
        clock.now += watches[0].interval
        for watch in watches:
            watch.check()


def test_the_timings_follow_the_timeout():
    watch = StallWatch(dist.HashStore(), 0, 2, 60.0)
    assert (watch.interval, watch.silent_after, watch.warn_after) == (3.0, 12.0, 30.0)
    long = StallWatch(dist.HashStore(), 0, 2, 1800.0)
    assert (long.interval, long.warn_after) == (5.0, 120.0)  # capped


def test_a_group_in_step_says_nothing(caplog):
    watches, clock = group(3)
    for step in range(1, 30):
        for watch in watches:
            watch.beat(step)
        advance(clock, watches, 3)
    assert all(w.diagnosis() is None for w in watches)
    assert not caplog.records


def test_a_frozen_rank_is_named_by_the_lowest_live_rank_once(caplog):
    watches, clock = group(3)
    for watch in watches:
        watch.beat(5)
    advance(clock, watches, 6)
    live = [watches[0], watches[2]]  # rank 1 stops (its thread with it); the others wait
    for watch in live:
        watch.beat(6)
    with caplog.at_level(logging.WARNING, logger="bdbnet.runtime.stall"):
        advance(clock, live, 45)
    found = watches[0].diagnosis()
    assert watches[2].diagnosis().startswith("rank 1 (")
    assert found.startswith(f"rank 1 (pid {watches[1].where[4:]}, at step 5) stopped responding ")
    assert "the process is stopped (SIGSTOP, ctrl-Z)" in found
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1  # rank 0 only, and once
    assert warnings[0].startswith("the training group has not advanced for 30 s: rank 1 (")
    assert warnings[0].endswith("it fails at train.dist_timeout = 60 s")


def test_rank_zero_frozen_leaves_the_report_to_rank_one(caplog):
    watches, clock = group(2)
    advance(clock, watches, 3)
    with caplog.at_level(logging.WARNING, logger="bdbnet.runtime.stall"):
        advance(clock, watches[1:], 45)
    prefix = "the training group has not advanced for 30 s: rank 0 (pid"
    assert [r.getMessage()[: len(prefix)] for r in caplog.records] == [prefix]


def test_a_live_rank_behind_is_named_and_the_stall_is_reported_afresh_after_progress(caplog):
    watches, clock = group(2)
    watches[0].beat(8)
    watches[1].beat(7)  # alive (its heartbeat goes on) but stuck before step 8
    with caplog.at_level(logging.WARNING, logger="bdbnet.runtime.stall"):
        advance(clock, watches, 45)
        watches[1].beat(8)
        advance(clock, watches, 6)  # the group moved: no stall, no culprit
        assert watches[0].diagnosis() is None
        watches[0].beat(9)
        advance(clock, watches, 45)  # rank 1 stuck again, before step 9
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "rank 1 (pid" in messages[0] and "at step 7) is alive but behind" in messages[0]
    assert "others wait at step 8" in messages[0] and "others wait at step 9" in messages[1]


def test_a_busy_group_at_one_step_has_no_culprit(caplog):
    watches, clock = group(2)
    for watch in watches:
        watch.beat(4)
    with caplog.at_level(logging.WARNING):
        advance(clock, watches, 90)  # rank 0 evaluating, rank 1 waiting: both alive
    assert watches[1].diagnosis() is None and not caplog.records


def test_a_collective_timeout_becomes_a_one_line_error_naming_the_rank():
    watches, clock = group(2, timeout=10.0)
    advance(clock, watches, 1)
    watches[0].beat(3)
    advance(clock, watches[:1], 12)
    gloo = RuntimeError("[gloo/.../unbound_buffer.cc:78] Timed out waiting 10000ms for recv")
    err = timeout_error(gloo, watches[0])
    assert isinstance(err, TrainingError)
    text = str(err)
    waited = "a collective waited train.dist_timeout = 10 s at step 4: rank 1 ("
    assert text.startswith(f"rank 0: {waited}")
    assert "stopped responding" in text and "Resume with --resume" in text
    assert "\n" not in text


def test_timeouts_without_a_culprit_and_other_errors():
    watches, clock = group(2)
    advance(clock, watches, 3)
    nccl = RuntimeError("[Rank 0] Watchdog caught collective operation timeout: WorkNCCL(...)")
    assert "every rank was alive at the same step" in str(timeout_error(nccl, watches[0]))
    pair = RuntimeError("Application timeout caused pair closure")  # gloo, DDP's broadcast
    assert isinstance(timeout_error(pair, watches[0]), TrainingError)
    assert timeout_error(RuntimeError("DataLoader worker exited"), watches[0]) is None
    assert timeout_error(nccl, None) is None  # one process: no group, no watch


def test_the_thread_publishes_and_stops():
    store = dist.HashStore()
    watch = StallWatch(store, 0, 1, timeout=4.0).start()  # interval 0.2 s
    watch.beat(3)
    try:
        first = store.get("stall/0").decode().split()
        for _ in range(50):
            now = store.get("stall/0").decode().split()
            if now[1] == "3":
                break
            watch._stop.wait(0.05)
        assert now[1] == "3" and int(now[0]) > int(first[0])
    finally:
        watch.stop()
    assert not watch._thread.is_alive()


@pytest.mark.parametrize("world", [1, 4])
def test_the_reporter_is_the_lowest_live_rank(world):
    watches, clock = group(world)
    advance(clock, watches, 3)
    assert [w._reporter() for w in watches] == [r == 0 for r in range(world)]
