"""Where a training step's time goes: data wait, targets, forward + backward, optimiser.

Off by default (the loop then pays nothing). ``benchmarks/train_speed.py`` switches it on;
on CUDA each section synchronises the device first, so the numbers are real and not the
time to queue kernels.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from typing import Iterator

import torch

SECTIONS = ("data", "targets", "forward_backward", "optimizer")


class StepTimer:
    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device
        self.totals: dict[str, float] = defaultdict(float)
        self.steps = 0
        self.images = 0
        self.step_ends: list[tuple[float, int]] = []  # (time, images so far) after each step
        self.epoch_starts: list[float] = []
        self.start = time.perf_counter()

    def _sync(self) -> None:
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        self._sync()
        t = time.perf_counter()
        yield
        self._sync()
        self.totals[name] += time.perf_counter() - t

    def step_done(self, images: int) -> None:
        self.steps += 1
        self.images += images
        self.step_ends.append((time.perf_counter(), self.images))

    def epoch_started(self) -> None:
        self.epoch_starts.append(time.perf_counter())


class NullTimer:
    """The default: sections cost nothing."""

    def section(self, name: str) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def step_done(self, images: int) -> None:
        pass

    def epoch_started(self) -> None:
        pass
