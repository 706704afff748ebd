"""One exception type for every user-facing failure.

The CLI catches :class:`FacespotError` and prints its message with a non-zero exit,
so a bad file never surfaces as a bare traceback. Raise it with a message that names
the file (and line, where there is one) and says what was expected.
"""

from __future__ import annotations

from pathlib import Path


class FacespotError(Exception):
    """An error caused by the user's input (files, options), not by a bug."""

    exit_code = 2


class OutputError(FacespotError, OSError):
    """An output that cannot be written (read-only, a folder in the way, disk full). Also an
    ``OSError``, so callers that handle I/O errors as such keep working."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is so that every writer closes as on Ctrl-C (see
    :func:`facespot.runtime.pipeline.sigterm_as_interrupt`). Defined here, torch- and
    numpy-free, so the CLI can tell it from Ctrl-C (exit 143, not 130) without imports."""


def located(path: str | Path, line: int | None, message: str) -> FacespotError:
    """Build an error that points at ``path:line`` so users can open the spot."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    return FacespotError(f"{where}: {message}")
