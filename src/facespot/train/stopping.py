"""Stop a training run on Ctrl-C or SIGTERM without losing what it trained.

Python's default SIGTERM ends the process at once and Ctrl-C raises wherever the run is
(inside an optimiser step, leaving weights, optimiser and schedule out of step): either way
everything since the last ``last.pt`` is lost (up to ``checkpoint_minutes``, or a whole epoch).
A run under :class:`StopRequest` instead notes the signal, finishes the step under way, saves
``last.pt`` at that batch and stops (exit 130 for Ctrl-C, 143 for SIGTERM); ``--resume``
continues at the next batch. A second signal stops at once, as before.
"""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from typing import Iterator

from facespot.errors import Terminated, signal_handlers

_NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}


class StopRequest:
    """The first SIGINT / SIGTERM of a run, noted for the loop to act on at a step boundary."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return _NAMES.get(self.signum, f"signal {self.signum}") if self.signum is not None else ""

    def exception(self) -> KeyboardInterrupt:
        """What the run raises once saved: the CLI exits 143 for SIGTERM, 130 for Ctrl-C."""
        return Terminated() if self.signum == signal.SIGTERM else KeyboardInterrupt()

    def _handler(self, signum, frame) -> None:
        if self.signum is not None:  # the second signal: stop now, as without this
            raise self.exception()
        self.signum = signum
        print(f"\nfacespot train: {self.name}: saving last.pt after the step under way, then stopping "
              "(send it again to stop at once, losing that)", file=sys.stderr, flush=True)  # fmt: skip

    @contextmanager
    def installed(self) -> Iterator["StopRequest"]:
        """Handle SIGINT and SIGTERM while the block runs (main thread only: signal handlers
        cannot be set elsewhere, and a run in another thread keeps the defaults)."""
        with signal_handlers((signal.SIGINT, signal.SIGTERM), self._handler):
            yield self
