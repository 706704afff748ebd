"""A pool of detector sessions run in worker threads, so the event loop never waits on inference.

Each request borrows one :class:`~facespot.runtime.detector.Detector` for the whole of its
work (decode, detect, blur, encode) in a thread of a pool with one thread per detector, and
gives it back when that thread is done -- even if the client has gone away meanwhile, so a
detector is never used by two requests at once (its options are set per request). ONNX
Runtime, OpenCV and NumPy release the GIL in their heavy parts, so ``N`` single-threaded
sessions keep ``N`` cores busy.

Back-pressure: a request waits at most ``queue_timeout`` seconds for a free detector, and at
most ``max_waiting`` requests wait at once; past either it gets :class:`Busy` (HTTP 503), so an
overload turns into quick refusals instead of an ever-growing queue of uploads in memory.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")


class Busy(Exception):
    """No detector became free in time (HTTP 503)."""


class DetectorPool:
    """``await pool.run(fn, *args)`` runs ``fn(detector, *args)`` in a worker thread.

    A detector is given back by the worker thread itself the moment its job ends (under a lock),
    so returning it never depends on an event loop still running; a waiting request is woken on
    its own loop.
    """

    def __init__(self, detectors: Sequence[Any], queue_timeout: float = 10.0, max_waiting: int = 64) -> None:
        if not detectors:
            raise ValueError("a detector pool needs at least one detector")
        self.detectors = list(detectors)
        self.queue_timeout = float(queue_timeout)
        self.max_waiting = int(max_waiting)
        self._lock = threading.Lock()
        self._free: list[Any] = list(detectors)
        self._waiters: deque[tuple[asyncio.Future, asyncio.AbstractEventLoop]] = deque()
        self._executor = ThreadPoolExecutor(len(self.detectors), thread_name_prefix="facespot-detect")

    @property
    def size(self) -> int:
        return len(self.detectors)

    @property
    def waiting(self) -> int:
        """Requests waiting for a detector now."""
        return len(self._waiters)

    @property
    def free(self) -> int:
        """Detectors not in use now."""
        return len(self._free)

    async def _acquire(self) -> Any:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free and not self._waiters:
                return self._free.pop()
            if len(self._waiters) >= self.max_waiting:
                raise Busy(f"server busy: {len(self._waiters)} requests already waiting for a detector; retry later")
            fut: asyncio.Future = loop.create_future()
            self._waiters.append((fut, loop))
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.queue_timeout)
        except BaseException as exc:
            with self._lock:
                try:
                    self._waiters.remove((fut, loop))
                except ValueError:
                    pass
            if fut.done() and not fut.cancelled():  # handed a detector just as we gave up: pass it on
                self._release(fut.result())
            else:
                fut.cancel()  # a hand-off already on its way sees this and passes the detector on
            if isinstance(exc, asyncio.TimeoutError):
                raise Busy(f"server busy: no detector free within {self.queue_timeout:g} s; retry later") from None
            raise

    def _release(self, detector: Any) -> None:
        """Give ``detector`` to the longest-waiting request, else back to the free list (any thread)."""
        with self._lock:
            while self._waiters:
                fut, loop = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(self._hand_over, fut, detector)
                    return
                except RuntimeError:  # that request's loop is closed
                    continue
            self._free.append(detector)

    def _hand_over(self, fut: asyncio.Future, detector: Any) -> None:
        if fut.done():  # the request gave up meanwhile
            self._release(detector)
        else:
            fut.set_result(detector)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        detector = await self._acquire()
        try:
            job = self._executor.submit(fn, detector, *args)
        except BaseException:
            self._release(detector)
            raise
        # Given back when the thread finishes, not when this coroutine does (it may be cancelled).
        job.add_done_callback(lambda _: self._release(detector))
        return await asyncio.wrap_future(job)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
