"""A reader that stops early (``facespot models | head -1``, ``--json - | head -1``) ends the
run quietly, as Unix tools do: no traceback, exit 141 (128 + SIGPIPE), what was written valid
(issue 20, item 8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"


def _into_closed_pipe(*argv: str) -> subprocess.CompletedProcess:
    """Run ``facespot ARGV`` with standard output a pipe nobody reads any more."""
    read, write = os.pipe()
    os.close(read)  # as `head -1` does once it has its line
    try:
        return subprocess.run([sys.executable, "-m", "facespot", *argv], stdout=write, stderr=subprocess.PIPE, text=True,
                              timeout=120)  # fmt: skip
    finally:
        os.close(write)


@pytest.mark.skipif(os.name != "posix", reason="POSIX pipes")
@pytest.mark.parametrize("argv", [["models"], ["detect", str(PHOTOS), "--json", "-"]])
def test_a_closed_pipe_ends_quietly(argv):
    proc = _into_closed_pipe(*argv)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr and "Exception ignored" not in proc.stderr
