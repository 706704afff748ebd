"""The torch backend on the main thread against a worker thread, with both cores also wanted by
two busy processes (issue 11, item 8: 1.34 s vs 0.11 s per image before ``import facespot`` set
``OMP_WAIT_POLICY=PASSIVE``). A timing, so a benchmark: on a shared machine one noisy round can
move the ratio; ``tests/runtime/test_torch_threads.py`` checks the cause deterministically.

    python benchmarks/torch_threads.py [--rounds 3]   # prints both times and their ratio
    OMP_WAIT_POLICY=ACTIVE python benchmarks/torch_threads.py   # the regression: ~3x
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

PHOTO = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "photos" / "astronaut.jpg"

SCRIPT = r"""
import os, subprocess, sys, threading, time
cpus = sorted(os.sched_getaffinity(0))[:2]
os.sched_setaffinity(0, cpus)  # two CPUs, both also wanted by two busy processes
hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in cpus]
try:
    for h in hogs:
        os.sched_setaffinity(h.pid, cpus)
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
    for _ in range(int(sys.argv[2])):  # interleaved rounds, best of each side
        per_image(main)
        th = threading.Thread(target=per_image, args=(worker,)); th.start(); th.join()
    print("RESULT", min(main), min(worker))
finally:
    for h in hogs:
        h.kill()
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved main/worker rounds (default: 3)")
    args = ap.parse_args()
    if not hasattr(os, "sched_setaffinity"):
        sys.exit("needs Linux CPU affinity")
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(PHOTO), str(args.rounds)], capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.exit(proc.stderr[-2000:])
    main_s, worker_s = (float(v) for v in proc.stdout.split("RESULT")[-1].split())
    print(f"main thread {1000 * main_s:.1f} ms/image, worker thread {1000 * worker_s:.1f} ms/image, "
          f"ratio {main_s / worker_s:.2f} (OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset: PASSIVE by facespot')})")  # fmt: skip


if __name__ == "__main__":
    main()
