"""Micro-batching: many clients' images share one forward pass.

A model on a CPU or a GPU computes a batch of 16 images in far less than 16 times the time of
one, and one model must not run two forward passes at once (they would fight over the same
cores and memory). So every request hands its images to one :class:`MicroBatcher` per model: a
bounded queue and one worker thread that takes the first waiting item, waits at most
``max_wait`` seconds for more (up to ``max_batch``), runs them as one batch and hands each
caller its own result through a :class:`concurrent.futures.Future`.

The batcher knows nothing about images or HTTP; it batches any payloads for any function that
maps a list of payloads onto a list of results of the same length.

Example:
    >>> with MicroBatcher(lambda xs: [2 * x for x in xs], max_batch=4, max_wait=0.001) as b:
    ...     b.map([1, 2, 3])
    [2, 4, 6]
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["BatcherClosedError", "BatcherFullError", "BatcherStats", "MicroBatcher"]

T = TypeVar("T")
R = TypeVar("R")

_STOP = object()


class BatcherFullError(RuntimeError):
    """The queue holds ``max_queue`` items already: the server is overloaded (HTTP 503)."""


class BatcherClosedError(RuntimeError):
    """The batcher was closed; it takes no more work."""


@dataclass
class BatcherStats:
    """What the worker did: forward passes (``batches``), items they held, the largest batch,
    and how many batches had each size (``sizes``)."""

    batches: int = 0
    items: int = 0
    largest: int = 0
    errors: int = 0
    sizes: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        mean = self.items / self.batches if self.batches else 0.0
        return {
            "batches": self.batches,
            "items": self.items,
            "largest": self.largest,
            "mean_batch": round(mean, 3),
            "errors": self.errors,
        }


class MicroBatcher(Generic[T, R]):
    """A queue and one worker thread that runs ``fn`` on batches of queued payloads.

    Args:
        fn: Maps a list of payloads onto a list of results of the same length, in order. An
            exception it raises is set on the future of every item of that batch.
        max_batch: The largest batch handed to ``fn``.
        max_wait: Seconds the worker waits after the first item for more to arrive; ``0``
            runs whatever is already queued at once.
        max_queue: Items waiting at most; :meth:`submit` raises :class:`BatcherFullError`
            beyond (``0``: unbounded).
        name: The worker thread's name.
    """

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        max_batch: int = 16,
        max_wait: float = 0.005,
        max_queue: int = 0,
        name: str = "bdbnet-batcher",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if not max_wait >= 0:
            raise ValueError(f"max_wait must be a number of seconds >= 0, got {max_wait}")
        if max_queue < 0:
            raise ValueError(f"max_queue must be >= 0, got {max_queue}")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait = float(max_wait)
        self.max_queue = max_queue
        self.stats = BatcherStats()
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ callers
    def submit(self, payloads: Sequence[T]) -> list[Future[R]]:
        """Queue ``payloads`` (one request's items: all or none are queued) and return one
        future per payload."""
        futures: list[Future[R]] = [Future() for _ in payloads]
        with self._lock:  # all of a request's items, or none
            if self._closed:
                raise BatcherClosedError("the batcher is closed")
            if self.max_queue and self._queue.qsize() + len(payloads) > self.max_queue:
                raise BatcherFullError(
                    f"{self._queue.qsize()} images are waiting for the model already "
                    f"(at most {self.max_queue}); try again shortly"
                )
            for payload, future in zip(payloads, futures):
                self._queue.put_nowait((payload, future))
        return futures

    def map(self, payloads: Sequence[T], timeout: float | None = None) -> list[R]:
        """Results of ``payloads``, blocking until the worker has computed them."""
        return [f.result(timeout) for f in self.submit(payloads)]

    async def amap(self, payloads: Sequence[T]) -> list[R]:
        """:meth:`map` for coroutines: awaits without blocking the event loop."""
        futures = self.submit(payloads)
        return list(await asyncio.gather(*(asyncio.wrap_future(f) for f in futures)))

    def pending(self) -> int:
        """Items waiting for the worker."""
        return self._queue.qsize()

    def close(self, timeout: float | None = 10.0) -> None:
        """Finish the queued work, then stop the worker (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # the stop marker may wait for room in a bounded queue: put it from outside the lock
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def __enter__(self) -> MicroBatcher[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ worker
    def _collect(self) -> tuple[list[tuple[T, Future[R]]], bool]:
        """The next batch (blocking for its first item) and whether the stop marker came."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch = [first]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                remaining = deadline - time.monotonic()
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _work(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._collect()
            live = [(p, f) for p, f in batch if f.set_running_or_notify_cancel()]
            if live:
                self._run(live)

    def _run(self, batch: list[tuple[T, Future[R]]]) -> None:
        stats = self.stats
        stats.batches += 1
        stats.items += len(batch)
        stats.largest = max(stats.largest, len(batch))
        stats.sizes[len(batch)] = stats.sizes.get(len(batch), 0) + 1
        try:
            results = list(self.fn([p for p, _ in batch]))
            if len(results) != len(batch):
                raise RuntimeError(
                    f"the batch function returned {len(results)} results for {len(batch)} items"
                )
        except BaseException as err:  # every caller of the batch learns why
            stats.errors += 1
            for _, future in batch:
                future.set_exception(err)
            return
        for (_, future), result in zip(batch, results):
            future.set_result(result)
