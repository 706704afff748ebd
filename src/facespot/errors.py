"""One exception type for every user-facing failure.

The CLI catches :class:`FacespotError` and prints its message with a non-zero exit,
so a bad file never surfaces as a bare traceback. Raise it with a message that names
the file (and line, where there is one) and says what was expected. SIGTERM is turned into
:class:`Terminated` here too (:func:`sigterm_as_interrupt`), for the CLI and the long runs alike.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


class FacespotError(Exception):
    """An error caused by the user's input (files, options), not by a bug."""

    exit_code = 2


class OutputError(FacespotError, OSError):
    """An output that cannot be written (read-only, a folder in the way, disk full). Also an
    ``OSError``, so callers that handle I/O errors as such keep working."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is so that every writer closes as on Ctrl-C (see
    :func:`sigterm_as_interrupt`). Defined here, torch- and numpy-free, so the CLI can tell it
    from Ctrl-C (exit 143, not 130) without imports."""


@contextmanager
def signal_handlers(signals: tuple[int, ...], handler: Callable[[int, Any], None]) -> Iterator[dict | None]:
    """``handler`` for ``signals`` while the block runs, the handlers before restored after it.
    Yields those (signal -> previous handler), or None where handlers cannot be set -- a thread
    other than the main one (a server's workers), an embedded interpreter -- and the block runs
    with the handlers as they are. The one place facespot installs signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    previous: dict = {}
    try:
        for s in signals:
            previous[s] = signal.signal(s, handler)
    except (ValueError, OSError):  # no signals here (embedded interpreters)
        for s, h in previous.items():
            signal.signal(s, h)
        yield None
        return
    try:
        yield previous
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Make SIGTERM (``kill``, ``timeout``, ``docker stop``, systemd) stop a run as Ctrl-C does.

    Python's default SIGTERM action ends the process at once, skipping ``finally``: a video
    being written then lacks its index (an MP4 without ``moov`` plays nowhere). Raising
    :class:`Terminated` instead unwinds through the writers' ``finally`` blocks. A second
    SIGTERM while they close is ignored. Only the main thread can own signal handlers; in
    other threads (a server's workers) this does nothing."""
    fired = False

    def handler(signum, frame) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise Terminated()

    with signal_handlers((signal.SIGTERM,), handler):
        try:
            yield
        finally:
            fired = True  # closing the writers must not be interrupted again


def located(path: str | Path, line: int | None, message: str) -> FacespotError:
    """Build an error that points at ``path:line`` so users can open the spot."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    return FacespotError(f"{where}: {message}")
