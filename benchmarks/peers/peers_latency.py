"""Latency of peer face detectors on the same frames as ``benchmarks/latency.py``.

Runs in its OWN virtual environment (see README.md here): MediaPipe 0.10.14's BlazeFace
graphs (short range = the 128x128 front model, full range) and OpenCV's Haar cascade.
Imports nothing of facespot's. Each timed call is the whole user-visible call: colour
conversion + detection + the library's own post-processing.

Threads: pass ``--threads N``; the process pins itself to N CPUs before any library starts
its thread pools (MediaPipe has no thread option), and OpenCV gets ``cv2.setNumThreads(N)``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np


def pin_cpus(threads: int) -> None:
    """Keep this process (and every thread a library starts later) on ``threads`` CPUs:
    MediaPipe has no thread option."""
    try:
        cpus = sorted(os.sched_getaffinity(0))[:threads]
        os.sched_setaffinity(0, set(cpus))
    except (AttributeError, OSError):
        pass


def _time(fn, frames, runs: int, budget: float, warmup: int = 2) -> list[float]:
    for i in range(warmup):
        fn(frames[i % len(frames)])
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs and (time.perf_counter() - start < budget or len(times) < 3):
        f = frames[len(times) % len(frames)]
        t = time.perf_counter()
        fn(f)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", required=True, help=".npy file of (N, H, W, 3) uint8 BGR frames")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--budget", type=float, default=5.0, help="seconds per detector")
    ap.add_argument("--json", action="store_true", help="print JSON rows (for latency.py) instead of a table")
    args = ap.parse_args()
    pin_cpus(args.threads)

    import cv2

    cv2.setNumThreads(args.threads)
    frames = list(np.load(args.frames))
    rows = []

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    def haar(frame):
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        return cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(20, 20))

    detectors = [("haar_frontalface_default", f"opencv {cv2.__version__}", haar)]
    try:
        import mediapipe as mp

        for selection, label in ((0, "mediapipe_blazeface_short"), (1, "mediapipe_blazeface_full")):
            fd = mp.solutions.face_detection.FaceDetection(model_selection=selection, min_detection_confidence=0.5)
            detectors.append((label, f"mediapipe {mp.__version__}", lambda f, fd=fd: fd.process(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))))
    except ImportError as exc:
        print(f"mediapipe not available: {exc}")

    for name, backend, fn in detectors:
        t = _time(fn, frames, args.runs, args.budget)
        med = statistics.median(t) * 1000
        p90 = float(np.percentile(t, 90)) * 1000
        rows.append({"model": name, "backend": backend, "threads": args.threads, "median_ms": med, "p90_ms": p90,
                     "fps": 1000 / med, "runs": len(t), "net_ms": None, "post_ms": None})  # fmt: skip
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['model']:28s} {r['backend']:22s} {r['threads']:>3d} {r['median_ms']:9.2f} {r['p90_ms']:9.2f} {r['fps']:7.1f}")


if __name__ == "__main__":
    main()
