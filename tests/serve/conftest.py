"""Fixtures for `facespot serve` tests: the detector pool, in-process clients, a live server.

Test modules that need the ``serve`` extra call :func:`require_serve_extra` first, so that
without it they are reported as skipped (the decoding and pool tests need only the base install).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest



def require_serve_extra() -> None:
    """Skip the calling test module unless the ``serve`` extra is installed."""
    for module in ("starlette", "uvicorn", "python_multipart"):
        pytest.importorskip(module, reason=f"{module} missing: facespot serve needs pip install -e '.[serve]'")


ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "tests" / "fixtures" / "photos"
LABELS = {k: v for k, v in json.loads((PHOTOS / "labels.json").read_text()).items() if not k.startswith("_")}
ARTIFACTS = Path(os.environ.get("FACESPOT_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts")) / "serve"


@pytest.fixture(scope="session")
def real_pool():
    """Two sessions of the packaged default detector, shared by the in-process API tests."""
    from facespot.serve import load_pool
    from facespot.serve.app import ServeConfig

    pool = load_pool("default", workers=2, config=ServeConfig())
    yield pool
    pool.close()


@pytest.fixture
def make_client(real_pool):
    """``make_client(pool=None, **config)`` -> a Starlette TestClient over the app."""
    from starlette.testclient import TestClient

    from facespot.serve.app import ServeConfig, create_app

    def make(pool=None, **config):
        pool = pool or real_pool
        pool.queue_timeout = config.get("queue_timeout", 10.0)
        pool.max_waiting = config.get("max_waiting", 64)
        return TestClient(create_app(pool, ServeConfig(**config)), raise_server_exceptions=False)

    return make


@pytest.fixture
def client(make_client):
    return make_client()


class BlockingDetector:
    """A stand-in detector whose call waits until released: to hold the pool busy on purpose."""

    model_name = "blocking"
    num_keypoints = 0

    def __init__(self, options, fail: bool = False):
        self.options = options
        self.fail = fail
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, image, rgb=None):
        self.entered.set()
        if self.fail:
            raise RuntimeError("model exploded")
        self.release.wait(30)
        return []


@pytest.fixture
def blocking_pool(real_pool):
    from facespot.serve.pool import DetectorPool

    det = BlockingDetector(real_pool.detectors[0].options)
    pool = DetectorPool([det], queue_timeout=0.2, max_waiting=8)
    yield pool, det
    det.release.set()
    pool.close()


# ---------------------------------------------------------------------- a live server


class LiveServer:
    def __init__(self, url: str, proc: subprocess.Popen, log: Path):
        self.url, self.proc, self.log = url, proc, log
        self.host, self.port = re.match(r"http://([^:/]+):(\d+)/", url).groups()
        self.port = int(self.port)


@contextmanager
def serve_process(log: Path, *extra: str):
    """``facespot serve`` (plus ``extra`` options) in a subprocess on 127.0.0.1, any free port,
    as a user starts it; stopped on exit."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("FACESPOT_TOKEN", None)
    cmd = [sys.executable, "-m", "facespot", "serve", "--port", "0", *extra]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        m = re.search(r"facespot serve: (http://\S+/)", log.read_text(errors="replace"))
        if m:
            url = m.group(1)
            break
        time.sleep(0.1)
    if url is None:
        proc.kill()
        pytest.fail(f"facespot serve did not start:\n{log.read_text(errors='replace')}")
    try:
        yield LiveServer(url, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The server most tests share: two workers, uploads up to 2 MB."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with serve_process(log, "--workers", "2", "--max-upload-mb", "2") as server:
        yield server
