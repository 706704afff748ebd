"""Fixtures for every test folder."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _drop_dac_override() -> None:
    """In the child, before it execs: take the two capabilities that let root ignore file
    permissions out of its bounding set, so the program it runs obeys them as any user's does
    (and still reads its own files: the checkout and the venv may sit under /root)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.fixture
def permissions_bind():
    """``run(*args)``: ``python ARGS`` in a subprocess that file permissions bind, also when the
    tests run as root, as CI does (a read-only folder is read-only for it)."""
    if os.name != "posix" or (os.geteuid() == 0 and not sys.platform.startswith("linux")):
        pytest.skip("needs Linux capabilities to run as root without its permission override")

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        preexec = _drop_dac_override if os.geteuid() == 0 else None
        try:
            return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                                  preexec_fn=preexec)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise
        except subprocess.SubprocessError as exc:  # the capability could not be dropped here
            pytest.skip(f"cannot run without root's permission override here ({exc})")

    return run


@pytest.fixture
def read_only_folder(tmp_path):
    """An empty folder nobody may write into (while the test runs)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        yield ro
    finally:
        ro.chmod(0o755)
