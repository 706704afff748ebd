"""Latency of every peer face detector installed in THIS venv, on the same frames as ours.

Run by the python of one peer venv (``benchmarks/peers/install.sh``); imports nothing of
facespot's. It times each detector whose library this venv has (RetinaFace, YuNet, MediaPipe
BlazeFace short / full, MTCNN: the ``*_predict.py`` scripts here), and with ``--haar`` OpenCV's
Haar cascade (where ``cv2.data.haarcascades`` ships: OpenCV 4.x wheels; 5.x dropped the files). Each timed
call is the whole user-visible call at the detector's default threshold: colour conversion,
the library's own resizing, inference, decoding, NMS, conversion to face dicts.

Threads: ``--threads N`` pins the process to N CPUs before any library starts its thread pools
(MediaPipe has no thread option), and each detector also gets its own thread option where it
has one (ONNX Runtime intra-op threads, OpenMP, torch, ``cv2.setNumThreads``). Run once per
thread count (``benchmarks/latency.py`` and ``benchmarks/model_report.py`` do).

    /tmp/facespot-peers/mediapipe/bin/python benchmarks/peers/peers_latency.py --frames frames.npy --threads 1
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys

import numpy as np

from common import latency_row, pin_cpus, time_calls

# (script module, the library it needs) -- checked with find_spec, imported after pinning
SCRIPTS = (("retinaface_predict", "retinaface"), ("yunet_predict", "yuface"),
           ("mediapipe_predict", "mediapipe"), ("mtcnn_predict", "facenet_pytorch"))  # fmt: skip


def installed_peers() -> list[tuple[str, str, object]]:
    """``(script, key, Peer)`` of every peer whose library this venv has."""
    out = []
    for script, lib in SCRIPTS:
        if importlib.util.find_spec(lib) is None:
            continue
        mod = importlib.import_module(script)
        for key, peer in mod.PEERS.items():
            out.append((script, key, peer))
    return out


def haar(threads: int):
    import cv2

    path = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not path:
        return None
    cascade = cv2.CascadeClassifier(path + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        return None

    def detect(frame):
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        return cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(20, 20))

    return detect, f"opencv {cv2.__version__}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", required=True, help=".npy file of (N, H, W, 3) uint8 BGR frames")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--budget", type=float, default=30.0, help="seconds per detector at most (at least 3 calls)")
    ap.add_argument("--haar", action="store_true", help="also time OpenCV's Haar cascade (frontalface_default)")
    ap.add_argument("--json", action="store_true", help="print JSON rows (for latency.py) instead of a table")
    args = ap.parse_args()
    pin_cpus(args.threads)

    import cv2

    cv2.setNumThreads(args.threads)
    frames = list(np.load(args.frames))
    rows = []
    if args.haar and (h := haar(args.threads)) is not None:
        fn, backend = h
        rows.append(latency_row("haar_frontalface_default", backend, args.threads, time_calls(fn, frames, args.runs, args.budget)))
    for script, key, peer in installed_peers():
        fn, close = peer.build(peer.default_threshold, args.threads)
        try:
            times = time_calls(fn, frames, args.runs, args.budget)
        finally:
            if close:
                close()
        row = latency_row(peer.label, peer.version(), args.threads, times)
        row["peer"] = f"{script}:{key}"
        rows.append(row)
        print(f"timed {peer.label}: {row['median_ms']:.1f} ms", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['model']:34s} {r['backend']:40s} {r['threads']:>3d} {r['median_ms']:9.2f} {r['p90_ms']:9.2f} {r['fps']:7.1f}")


if __name__ == "__main__":
    main()
