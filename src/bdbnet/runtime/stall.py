"""Which rank holds up a torchrun group: heartbeats and step counters in the group's store.

A process that stops (``SIGSTOP`` or ctrl-Z, a swapped-out or unreachable host, a hang in data
loading) stalls every other rank in their next collective until the process group's timeout
(``train.dist_timeout``) fires, and the backends then say only that a receive timed out. A
:class:`StallWatch` on every rank publishes, from a daemon thread, a heartbeat and the training
step the rank has reached. When the group stops advancing, the lowest responsive rank names the
culprit -- a rank whose heartbeat stopped (the process is frozen) or a live one still at an
earlier step -- in a warning (logger ``bdbnet.runtime.stall``) once the stall has lasted
``min(timeout / 2, 120 s)``, and :func:`timeout_error` repeats it in the error raised when the
collective times out. Without a culprit (every rank alive at the same step: one rank evaluating
or writing while the others wait) nothing is said before the timeout.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bdbnet.errors import TrainingError

__all__ = ["StallWatch", "timeout_error"]

log = logging.getLogger(__name__)

WARN_AFTER_MAX = 120.0  # seconds of stall before the warning, at most


@dataclass
class _Seen:
    """What this rank last read of another rank, and when (this rank's clock) it changed."""

    beat: int
    step: int
    where: str
    beat_changed: float
    step_changed: float


class StallWatch:
    """Publish this rank's progress in ``store`` and diagnose the group's stalls.

    Args:
        store: The group's store (any ``torch.distributed.Store``; keys go under ``stall/``).
        rank, world_size: This process's place in the group.
        timeout: The process group's timeout in seconds: the warning comes at
            ``min(timeout / 2, 120)`` seconds of stall, the heartbeat every
            ``timeout / 20`` seconds (0.2 to 5).
        clock: Monotonic seconds (tests pass a fake one and call :meth:`check` themselves).

    Example:
        >>> watch = StallWatch(store, rank, world, timeout=1800).start()  # doctest: +SKIP
        >>> watch.beat(step)  # after every training step  # doctest: +SKIP
    """

    def __init__(
        self,
        store: Any,
        rank: int,
        world_size: int,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.rank = rank
        self.world_size = world_size
        self.timeout = float(timeout)
        self.interval = min(max(self.timeout / 20, 0.2), 5.0)
        self.silent_after = 4 * self.interval  # no heartbeat for this long: the rank is frozen
        self.warn_after = min(self.timeout / 2, WARN_AFTER_MAX)
        self.clock = clock
        self.where = f"pid {os.getpid()} on {socket.gethostname()}"
        self.step = 0
        self._beats = 0
        self._seen: dict[int, _Seen] = {}
        self._warned = False
        self._lock = threading.Lock()  # the thread's checks and the trainer's at a timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self, step: int) -> None:
        """Record that this rank has completed ``step`` (a plain attribute write: the thread
        publishes it)."""
        self.step = step

    def start(self) -> StallWatch:
        """Publish and check every ``interval`` seconds from a daemon thread."""
        self.check()
        self._thread = threading.Thread(target=self._run, name="bdbnet-stall-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * self.interval)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception as err:  # a store gone with the group: nothing left to watch
                log.debug("stall watch stopped: %s", err)
                return

    def check(self) -> str | None:
        """Publish this rank's heartbeat and step, read the others', and warn once if the group
        has stalled on a culprit for ``warn_after`` seconds; returns :meth:`diagnosis`."""
        with self._lock:
            return self._check()

    def _check(self) -> str | None:
        self._beats += 1
        self.store.set(f"stall/{self.rank}", f"{self._beats} {self.step} {self.where}")
        now = self.clock()
        keys = [f"stall/{r}" for r in range(self.world_size)]
        present = [k for k in keys if self.store.check([k])]
        for key, raw in zip(present, self.store.multi_get(present)):
            beat, step, where = raw.decode().split(" ", 2)
            self._record(int(key.rsplit("/", 1)[1]), int(beat), int(step), where, now)
        found = self.diagnosis()
        due = self._stalled_for() >= self.warn_after
        if found and due and not self._warned and self._reporter():
            self._warned = True
            log.warning(
                "the training group has not advanced for %.0f s: %s; it fails at "
                "train.dist_timeout = %g s",
                self._stalled_for(),
                found,
                self.timeout,
            )
        if self._stalled_for() < self.interval:
            self._warned = False  # it moved again: a later stall is reported afresh
        return found

    def _record(self, rank: int, beat: int, step: int, where: str, now: float) -> None:
        seen = self._seen.get(rank)
        if seen is None:
            self._seen[rank] = _Seen(beat, step, where, now, now)
            return
        if beat != seen.beat:
            seen.beat, seen.beat_changed = beat, now
        if step != seen.step:
            seen.step, seen.step_changed = step, now
        seen.where = where

    def _stalled_for(self) -> float:
        """Seconds since any rank's step last changed, as seen from here."""
        if not self._seen:
            return 0.0
        return self.clock() - max(s.step_changed for s in self._seen.values())

    def _frozen(self) -> list[int]:
        now = self.clock()
        return sorted(
            r
            for r in range(self.world_size)
            if r != self.rank
            and (r not in self._seen or now - self._seen[r].beat_changed > self.silent_after)
        )

    def _reporter(self) -> bool:
        """This rank speaks for the group: it is the lowest rank that still responds."""
        frozen = set(self._frozen())
        return self.rank == min(r for r in range(self.world_size) if r not in frozen)

    def diagnosis(self) -> str | None:
        """Which rank(s) the group waits for, in words, or ``None`` if no rank stands out."""
        now = self.clock()
        frozen = self._frozen()
        if frozen:
            parts = []
            for r in frozen:
                seen = self._seen.get(r)
                if seen is None:
                    parts.append(f"rank {r} has never reported")
                else:
                    parts.append(
                        f"rank {r} ({seen.where}, at step {seen.step}) stopped responding "
                        f"{now - seen.beat_changed:.0f} s ago"
                    )
            return (
                "; ".join(parts)
                + ": the process is stopped (SIGSTOP, ctrl-Z), swapped out or its host is "
                "unreachable"
            )
        if not self._seen:
            return None
        ahead = max(s.step for s in self._seen.values())
        behind = sorted(
            r
            for r, s in self._seen.items()
            if s.step < ahead and now - s.step_changed > self.silent_after
        )
        if not behind:
            return None
        names = ", ".join(
            f"rank {r} ({self._seen[r].where}, at step {self._seen[r].step})" for r in behind
        )
        verb = "is" if len(behind) == 1 else "are"
        return (
            f"{names} {verb} alive but behind while the others wait at step {ahead}: it is "
            "slow or hung (data loading, a stuck file system, another job on its device)"
        )


# how the backends word a collective's timeout: gloo (a wait, or the pair it closed), nccl
TIMEOUT_MESSAGES = ("timed out waiting", "application timeout", "collective operation timeout")


def timeout_error(err: BaseException, watch: StallWatch | None) -> TrainingError | None:
    """The user error for a collective that timed out, naming the stalled rank when ``watch``
    found one; ``None`` for other errors (they keep their traceback) or without a watch."""
    text = str(err).lower()
    if watch is None or not any(words in text for words in TIMEOUT_MESSAGES):
        return None
    try:
        found = watch.check()  # the freshest view: the other ranks' last words are in the store
    except Exception:  # the store went with the group
        found = watch.diagnosis()
    cause = found or (
        "every rank was alive at the same step (one rank busy longer than the timeout: "
        "evaluation, a checkpoint on a slow disk, the image check)"
    )
    return TrainingError(
        f"rank {watch.rank}: a collective waited train.dist_timeout = {watch.timeout:g} s at "
        f"step {watch.step + 1}: {cause}. Resume with --resume (torchrun --max-restarts does "
        "it by itself); raise train.dist_timeout if that wait is expected"
    )
