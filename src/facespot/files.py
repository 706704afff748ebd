"""Atomic file writes: a crash or a full disk never leaves a half-written weights file,
checkpoint or export where a complete one is expected."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def write_atomically(path: str | Path, write: Callable[[str], object], suffix: str = ".tmp") -> Path:
    """Call ``write(tmp_name)`` on a temporary file beside ``path``, then rename it over
    ``path`` (``os.replace`` is atomic on one file system). The temporary file is removed
    whatever goes wrong. ``suffix``: for writers that insist on an extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)  # mkstemp makes 0600 files; give the result the usual permissions
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
