"""The micro-batcher: concurrent callers share batches, limits hold, errors reach every caller."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bdbnet.serve.batching import BatcherClosedError, BatcherFullError, MicroBatcher


class Recorder:
    """A batch function that records the batch sizes (and can be held or made to fail)."""

    def __init__(self, delay: float = 0.0, fail: Exception | None = None) -> None:
        self.sizes: list[int] = []
        self.delay = delay
        self.fail = fail
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, xs: list[int]) -> list[int]:
        self.gate.wait(5)
        self.sizes.append(len(xs))
        time.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return [10 * x for x in xs]


def test_results_come_back_in_order_for_each_caller():
    with MicroBatcher(Recorder(), max_batch=4, max_wait=0.001) as b:
        assert b.map(list(range(10))) == [10 * x for x in range(10)]
        assert b.map([]) == []


def test_concurrent_callers_share_forward_passes():
    fn = Recorder()
    with MicroBatcher(fn, max_batch=8, max_wait=0.2) as b:
        out: dict[int, int] = {}
        start = threading.Barrier(8)

        def client(i: int) -> None:
            start.wait()
            out[i] = b.map([i])[0]

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert out == {i: 10 * i for i in range(8)}
    assert sum(fn.sizes) == 8
    assert len(fn.sizes) < 8  # some callers shared a forward pass
    assert b.stats.largest == max(fn.sizes) > 1


def test_the_largest_batch_is_respected():
    fn = Recorder()
    with MicroBatcher(fn, max_batch=3, max_wait=0.05) as b:
        fn.gate.clear()  # hold the worker so that everything queues up
        futures = b.submit(list(range(10)))
        fn.gate.set()
        assert [f.result(5) for f in futures] == [10 * x for x in range(10)]
    assert max(fn.sizes) <= 3
    assert sum(fn.sizes) == 10


def test_the_first_item_waits_at_most_max_wait():
    fn = Recorder()
    with MicroBatcher(fn, max_batch=64, max_wait=0.05) as b:
        t0 = time.perf_counter()
        assert b.map([1]) == [10]
        elapsed = time.perf_counter() - t0
    assert 0.04 <= elapsed < 1.0
    with MicroBatcher(Recorder(), max_batch=64, max_wait=0.0) as b:
        t0 = time.perf_counter()
        b.map([1])
        assert time.perf_counter() - t0 < 0.04


def test_an_error_reaches_every_caller_of_the_batch_and_the_worker_goes_on():
    fn = Recorder(fail=ValueError("model exploded"))
    b = MicroBatcher(fn, max_batch=8, max_wait=0.05)
    futures = b.submit([1, 2, 3])
    for f in futures:
        with pytest.raises(ValueError, match="model exploded"):
            f.result(5)
    assert b.stats.errors >= 1
    fn.fail = None
    assert b.map([4]) == [40]
    b.close()


def test_a_wrong_number_of_results_is_an_error_not_a_hang():
    with MicroBatcher(lambda xs: xs[:1], max_batch=4, max_wait=0.05) as b:
        futures = b.submit([1, 2])
        with pytest.raises(RuntimeError, match="1 results for 2 items"):
            futures[1].result(5)


def test_a_full_queue_refuses_the_whole_request():
    fn = Recorder()
    fn.gate.clear()
    b = MicroBatcher(fn, max_batch=1, max_wait=0.0, max_queue=3)
    first = b.submit([1])  # taken by the worker, which is held
    time.sleep(0.05)
    queued = b.submit([2, 3])
    with pytest.raises(BatcherFullError, match="at most 3"):
        b.submit([4, 5])  # 2 waiting + 2 > 3: none of them is queued
    assert b.pending() == 2
    fn.gate.set()
    assert [f.result(5) for f in first + queued] == [10, 20, 30]
    b.close()


def test_cancelled_items_are_skipped():
    fn = Recorder()
    fn.gate.clear()
    b = MicroBatcher(fn, max_batch=1, max_wait=0.0)
    b.submit([1])
    time.sleep(0.05)
    cancelled, kept = b.submit([2, 3])
    assert cancelled.cancel()
    fn.gate.set()
    assert kept.result(5) == 30
    b.close()
    assert sum(fn.sizes) == 2


def test_close_finishes_queued_work_then_refuses_more():
    fn = Recorder(delay=0.01)
    b = MicroBatcher(fn, max_batch=2, max_wait=0.0)
    futures = b.submit(list(range(6)))
    b.close()
    assert [f.result(0) for f in futures] == [10 * x for x in range(6)]
    with pytest.raises(BatcherClosedError):
        b.submit([1])
    b.close()  # idempotent


def test_amap_awaits_without_blocking_the_event_loop():
    async def main(b: MicroBatcher) -> list[list[int]]:
        return await asyncio.gather(*(b.amap([i, i + 1]) for i in range(5)))

    fn = Recorder()
    with MicroBatcher(fn, max_batch=16, max_wait=0.05) as b:
        out = asyncio.run(main(b))
    assert out == [[10 * i, 10 * (i + 1)] for i in range(5)]
    assert len(fn.sizes) < 5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_batch": 0}, "max_batch"),
        ({"max_wait": -1}, "max_wait"),
        ({"max_wait": float("nan")}, "max_wait"),
        ({"max_queue": -1}, "max_queue"),
    ],
)
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MicroBatcher(lambda xs: xs, **kwargs)
