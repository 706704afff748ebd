"""The detector pool: one request per detector at a time, time-outs, cancellation, hand-over."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from facespot.serve.pool import Busy, DetectorPool


def test_never_lends_one_detector_twice_and_keeps_the_event_loop_free():
    in_use: set[int] = set()
    clash = []
    lock = threading.Lock()

    def job(det, k):
        with lock:
            if det in in_use:
                clash.append(det)
            in_use.add(det)
        time.sleep(0.01)
        with lock:
            in_use.discard(det)
        return k

    pool = DetectorPool([1, 2, 3], queue_timeout=30)

    async def main():
        ticks = 0

        async def ticker():  # runs only while the loop is not blocked by inference
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.002)

        t = asyncio.create_task(ticker())
        results = await asyncio.gather(*(pool.run(job, k) for k in range(60)))
        t.cancel()
        return results, ticks

    results, ticks = asyncio.run(main())
    assert results == list(range(60)) and not clash
    assert ticks > 20  # 60 x 10 ms on 3 workers = 200 ms of work; the loop ticked throughout
    assert sorted(pool._free) == [1, 2, 3] and pool.waiting == 0
    pool.close()


def test_busy_after_the_queue_timeout_and_at_the_waiting_cap():
    gate = threading.Event()
    pool = DetectorPool(["d"], queue_timeout=0.1, max_waiting=1)

    async def main():
        first = asyncio.create_task(pool.run(lambda d: gate.wait(10)))
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        with pytest.raises(Busy, match="within 0.1 s"):
            await pool.run(lambda d: None)
        waited = time.monotonic() - t0
        second = asyncio.create_task(pool.run(lambda d: "second"))
        await asyncio.sleep(0.01)
        with pytest.raises(Busy, match="already waiting"):  # one waits already: refused at once
            await pool.run(lambda d: None)
        gate.set()
        return await first, await second, waited

    pool.queue_timeout = 0.1
    first, second, waited = asyncio.run(main())
    assert first is True and second == "second" and 0.09 < waited < 1.0
    assert pool._free == ["d"]
    pool.close()


def test_a_cancelled_request_gives_its_detector_back_when_the_thread_ends():
    gate = threading.Event()
    pool = DetectorPool(["d"], queue_timeout=5)

    async def main():
        task = asyncio.create_task(pool.run(lambda d: gate.wait(10)))
        await asyncio.sleep(0.05)
        task.cancel()  # the client went away while its job runs
        await asyncio.sleep(0.05)
        assert pool.free == 0  # still in use by the running thread
        waiter = asyncio.create_task(pool.run(lambda d: "next"))
        await asyncio.sleep(0.05)
        gate.set()
        return await waiter

    assert asyncio.run(main()) == "next"
    assert pool._free == ["d"]
    pool.close()


def test_detectors_come_back_even_when_each_request_has_its_own_loop():
    pool = DetectorPool(["a", "b"], queue_timeout=1)
    for _ in range(5):  # as the Starlette test client does: a fresh loop per request
        assert asyncio.run(pool.run(lambda d: d)) in ("a", "b")
    time.sleep(0.05)
    assert sorted(pool._free) == ["a", "b"]
    pool.close()


def test_errors_in_the_job_propagate_and_free_the_detector():
    pool = DetectorPool(["d"])

    def boom(d):
        raise ValueError("bad")

    with pytest.raises(ValueError):
        asyncio.run(pool.run(boom))
    time.sleep(0.05)
    assert pool._free == ["d"]
    pool.close()
