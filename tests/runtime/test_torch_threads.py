"""The torch backend is as fast on the main thread as in a worker thread, also when the cores
are shared with other busy processes (issue 11, item 8: 1.34 s vs 0.11 s per image).

Cause: GNU OpenMP threads busy-wait after each parallel region; with the cores taken by other
processes the spinning ate the time slices of the computation (a worker thread's team escaped
because libgomp throttles spinning once it manages more threads than CPUs). ``import
facespot`` sets ``OMP_WAIT_POLICY=PASSIVE`` before torch loads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PHOTO = Path(__file__).resolve().parents[1] / "fixtures" / "photos" / "astronaut.jpg"

SCRIPT = r"""
import os, subprocess, sys, threading, time
cpus = sorted(os.sched_getaffinity(0))[:2]
os.sched_setaffinity(0, cpus)  # two CPUs, both also wanted by two busy processes
hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in cpus]
try:
    for h in hogs:
        os.sched_setaffinity(h.pid, cpus)
    import numpy as np
    import cv2
    import facespot  # as a user would: before anything imports torch
    det = facespot.load(backend="torch", threads=len(cpus))
    img = cv2.imread(sys.argv[1])
    def per_image(out):
        for _ in range(2):
            det(img)
        ts = []
        for _ in range(5):
            t = time.perf_counter(); det(img); ts.append(time.perf_counter() - t)
        out.append(sorted(ts)[2])
    main, worker = [], []
    for _ in range(3):  # interleaved rounds, best of each side: one noisy round decides nothing
        per_image(main)
        th = threading.Thread(target=per_image, args=(worker,)); th.start(); th.join()
    print("RESULT", min(main), min(worker))
finally:
    for h in hogs:
        h.kill()
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
@pytest.mark.timeout(300)
def test_torch_backend_main_thread_is_not_slower_under_contention():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(PHOTO)], capture_output=True, text=True, env=env, timeout=280)
    assert proc.returncode == 0, proc.stderr[-2000:]
    main, worker = (float(v) for v in proc.stdout.split("RESULT")[-1].split())
    assert main <= 1.8 * worker + 0.02, f"main thread {main:.3f} s/image vs worker thread {worker:.3f} s/image"
