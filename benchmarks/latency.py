"""Whole-call latency of ``detector(frame)`` on 640x480 frames, every model x backend x threads.

What is timed is what a user waits for: BGR array in, ``list[Face]`` out (colour handling,
resize/letterbox, normalisation, the network, decoding, NMS). Untrained weights are fine for
timing -- except that an untrained head scores thousands of anchors above the threshold,
which makes NMS far busier than with trained weights; the ``cand`` column shows how many
candidates entered NMS so the post-processing numbers can be read in that light.

A second table splits FaceBoxes' time into network vs decode+NMS at several candidate counts.
Peers (RetinaFace MobileNet-0.25, YuNet, MediaPipe BlazeFace, MTCNN, OpenCV Haar) are timed in
the same run when their venvs exist (``bash benchmarks/peers/install.sh``; see
``benchmarks/peers/README.md``).

    python benchmarks/latency.py                       # all models, both backends, 1 and 2 threads
    python benchmarks/latency.py --models faceboxes --threads 1 --runs 50
    python benchmarks/latency.py --models default runs/x/best.safetensors   # trained models
    python benchmarks/latency.py --models default --backends onnxruntime --threads 1 --rounds 3 \
        --no-split --json latency.json     # a release's numbers: the median of 3 rounds, kept in a file

With ``--rounds N`` every configuration (ours and the peers) is timed N times, the rounds one
after the other, and a last table gives each one's median over the rounds and its time as a
ratio of RetinaFace's at the same thread count, the median of the rounds' ratios: ratios
measured side by side move less than times on a shared machine. ``--json`` keeps every round's
rows, the summary, the load average before and after, and the command, so no number lives only
in a terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "wider-val-eval" / "images"
PEERS_DIR = "/tmp/facespot-peers"


def load_frames(n: int, seed: int = 0, data: Path = DATA) -> tuple[np.ndarray, str]:
    """``n`` 640x480 BGR frames cut from WIDER photos (``wider-val-eval``: ``n`` images evenly
    spaced through the sorted list, so most events are represented; each scaled to cover 640x480,
    top-left crop) when present, else synthetic."""
    files = sorted(data.rglob("*.jpg")) if data.is_dir() else []
    if files:
        step = max(len(files) / n, 1.0)
        files = [files[int(i * step)] for i in range(min(n, len(files)))]
    frames = []
    for f in files:
        img = cv2.imread(str(f))
        if img is None:
            continue
        h, w = img.shape[:2]
        s = max(640 / w, 480 / h)
        img = cv2.resize(img, (max(640, round(w * s)), max(480, round(h * s))), interpolation=cv2.INTER_AREA)
        frames.append(np.ascontiguousarray(img[:480, :640]))
    if frames:
        return np.stack(frames), f"{len(frames)} WIDER val (wider-val-eval) photos"
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 255, (n, 480, 640, 3), dtype=np.uint8).reshape(-1, 640, 3), (9, 9), 3)
    return base.reshape(n, 480, 640, 3), f"{n} synthetic frames"


def time_calls(fn, frames, runs: int, budget: float, warmup: int = 2) -> list[float]:
    for i in range(warmup):
        fn(frames[i % len(frames)])
    out: list[float] = []
    start = time.perf_counter()
    while len(out) < runs and (time.perf_counter() - start < budget or len(out) < 3):
        f = frames[len(out) % len(frames)]
        t = time.perf_counter()
        fn(f)
        out.append(time.perf_counter() - t)
    return out


def count_candidates(det, frame) -> int:
    from facespot.runtime.postprocess import logit_threshold

    view = det._views(*frame.shape[:2])[0]
    from facespot.runtime.preprocess import render_view

    x = det._normalize([render_view(np.ascontiguousarray(frame[:, :, ::-1]), view)])
    logits = det.run_network(x)[1][0]
    return int(min((logits >= logit_threshold(det.options.score_threshold)).sum(), det.options.pre_nms_top_k))


def bench_ours(models, backends, threads_list, frames, runs, budget, threshold) -> list[dict]:
    import torch

    from facespot.models import build
    from facespot.runtime.detector import Detector

    import facespot
    from facespot.models import available

    rows = []
    for name in models:
        trained = name not in available()  # "default", a packaged name or a weights file
        if not trained:
            torch.manual_seed(0)
            model = build(name).eval()
        for backend in backends:
            if backend == "torch" and name.endswith(".onnx"):
                continue  # an exported file runs on ONNX Runtime only
            for threads in threads_list:
                if trained:
                    det = facespot.load(name, backend=backend, threads=threads, score_threshold=threshold)
                else:
                    det = Detector.from_model(model, backend, threads=threads, score_threshold=threshold, trained=False)
                net, post = [], []

                def call(f, det=det):
                    det(f)
                    net.append(det.last_timing["network"])
                    post.append(det.last_timing["postprocess"])

                t = time_calls(call, frames, runs, budget)
                med = statistics.median(t) * 1000
                rows.append({
                    "model": name, "backend": backend, "threads": threads, "median_ms": med,
                    "p90_ms": float(np.percentile(t, 90)) * 1000, "fps": 1000 / med, "runs": len(t),
                    "net_ms": statistics.median(net) * 1000, "post_ms": statistics.median(post) * 1000,
                    "cand": count_candidates(det, frames[0]),
                })  # fmt: skip
                print_row(rows[-1], flush=True)
    return rows


def faceboxes_split(frames, threads: int, runs: int) -> list[dict]:
    """Network vs decode+NMS for FaceBoxes (ONNX Runtime) as the candidate count grows."""
    import torch

    from facespot.models import build
    from facespot.runtime.detector import Detector
    from facespot.runtime.preprocess import render_view

    torch.manual_seed(0)
    det = Detector.from_model(build("faceboxes").eval(), "onnxruntime", threads=threads, trained=False)
    frame = np.ascontiguousarray(frames[0][:, :, ::-1])
    view = det._views(480, 640)[0]
    x = det._normalize([render_view(frame, view)])
    out = [o[0] for o in det.run_network(x)]
    anchors = det.anchors(view.canvas_h, view.canvas_w)
    net = statistics.median(time_calls(lambda _: det.run_network(x), [0], runs, 5.0)) * 1000
    logits = np.sort(out[1])[::-1]
    rows = []
    for k in (10, 100, 1000, 5000):
        if k > len(logits):
            continue
        thr = float(1 / (1 + np.exp(-logits[k - 1])))  # a threshold that lets exactly ~k anchors through
        det.options.score_threshold = thr
        t = time_calls(lambda _: det._view_faces(out, anchors, view, 640, 480), [0], runs, 5.0)
        kept = len(det._view_faces(out, anchors, view, 640, 480)[0])
        rows.append({"candidates": k, "kept": kept, "net_ms": net, "post_ms": statistics.median(t) * 1000})
    det.options.score_threshold = 0.5
    return rows


def peer_pythons(peers_dir: str | Path) -> dict[str, Path]:
    """``{venv name: python}`` of each peer venv under ``peers_dir`` (benchmarks/peers/install.sh)."""
    root = Path(peers_dir)
    return {p.parent.parent.name: p for p in sorted(root.glob("*/bin/python"))} if root.is_dir() else {}


def bench_peers(pythons: dict[str, Path], frames: np.ndarray, threads_list, runs, budget, haar: bool = True) -> list[dict]:
    """Every peer of every venv, one process per venv and thread count (CPU pinning needs a fresh
    process); the Haar cascade once, in the mediapipe venv (or the first one)."""
    script = ROOT / "benchmarks" / "peers" / "peers_latency.py"
    haar_venv = "mediapipe" if "mediapipe" in pythons else next(iter(pythons), None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.npy"
        np.save(path, frames)
        for threads in threads_list:
            for name, python in pythons.items():
                cmd = [str(python), str(script), "--frames", str(path), "--threads", str(threads), "--runs", str(runs),
                       "--budget", str(budget), "--json"] + (["--haar"] if haar and name == haar_venv else [])  # fmt: skip
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
                if res.returncode != 0:
                    print(f"peers ({name}) failed ({res.returncode}): {res.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                    continue
                line = [ln for ln in res.stdout.splitlines() if ln.startswith("[")][-1]
                for r in json.loads(line):
                    r["venv"] = name
                    rows.append(r)
                    print_row(r, flush=True)
    return rows


REFERENCE = "retinaface"  # the peer venv whose times the summary's ratios divide by


def summarize_rounds(rounds: list[list[dict]]) -> list[dict]:
    """One row per (model, backend, threads) over the rounds: the median of the rounds' medians,
    their range, and the median of the rounds' ratios to the reference peer (RetinaFace
    MobileNet-0.25, the venv ``retinaface``) at the same thread count, when it was timed."""
    keys: list[tuple] = []
    times: dict[tuple, list[float]] = {}
    ratios: dict[tuple, list[float]] = {}
    for rows in rounds:
        ref = {r["threads"]: r["median_ms"] for r in rows if r.get("venv") == REFERENCE}
        for r in rows:
            key = (r["model"], r["backend"], r["threads"])
            if key not in times:
                keys.append(key)
                times[key], ratios[key] = [], []
            times[key].append(r["median_ms"])
            if r["threads"] in ref:
                ratios[key].append(r["median_ms"] / ref[r["threads"]])
    return [
        {"model": m, "backend": b, "threads": t, "rounds": len(times[(m, b, t)]),
         "median_ms": statistics.median(times[(m, b, t)]), "min_ms": min(times[(m, b, t)]), "max_ms": max(times[(m, b, t)]),
         "x_retinaface": statistics.median(ratios[(m, b, t)]) if ratios[(m, b, t)] else None}
        for m, b, t in keys
    ]  # fmt: skip


HEADER = f"{'model':32s} {'backend':42s} {'thr':>3s} {'median ms':>9s} {'p90 ms':>9s} {'FPS':>7s} {'net ms':>8s} {'post ms':>8s} {'cand':>6s}"


def print_row(r: dict, flush: bool = False) -> None:
    def f(v, w, p=2):
        return f"{v:{w}.{p}f}" if isinstance(v, (int, float)) and v is not None else f"{'-':>{w}s}"

    cand = r.get("cand")
    print(
        f"{r['model']:32s} {r['backend']:42s} {r['threads']:>3d} {f(r['median_ms'], 9)} {f(r['p90_ms'], 9)} "
        f"{f(r['fps'], 7, 1)} {f(r.get('net_ms'), 8)} {f(r.get('post_ms'), 8)} {cand if cand is not None else '-':>6}",
        flush=flush,
    )


def main() -> None:
    from facespot.models import available
    from facespot.runtime.backends import physical_cores

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=None,
                    help="registry names (untrained), 'default' or weights files (trained); default: every registered model")
    ap.add_argument("--backends", nargs="*", default=["torch", "onnxruntime"])
    ap.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    ap.add_argument("--runs", type=int, default=30, help="timed calls per configuration (at most)")
    ap.add_argument("--budget", type=float, default=4.0, help="seconds per configuration (at least 3 calls)")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--peers", default=PEERS_DIR, metavar="DIR",
                    help=f"peer venvs made by benchmarks/peers/install.sh (default {PEERS_DIR}; '' to skip)")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=1, help="time everything this many times; summary: medians over the rounds")
    ap.add_argument("--no-split", action="store_true", help="skip FaceBoxes' network vs decode+NMS table")
    ap.add_argument("--json", metavar="FILE", help="also write every round's rows and the summary here")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")

    load_before = os.getloadavg()
    frames, what = load_frames(args.frames)
    import onnxruntime
    import torch

    print(f"frames: {what}, 640x480; torch {torch.__version__}, onnxruntime {onnxruntime.__version__}; "
          f"{os.cpu_count()} logical CPUs, {physical_cores()} physical cores usable; score threshold {args.threshold}")  # fmt: skip
    print("whole detector(frame) call; net/post = median network and decode+NMS time inside it; "
          "cand = anchors above threshold entering NMS (many with untrained weights)\n")  # fmt: skip
    pythons = peer_pythons(args.peers) if args.peers else {}
    rounds: list[list[dict]] = []
    for k in range(args.rounds):
        print(HEADER if args.rounds == 1 else f"round {k + 1} of {args.rounds}\n{HEADER}")
        rows = bench_ours(args.models or available(), args.backends, args.threads, frames, args.runs, args.budget, args.threshold)
        if pythons:
            rows += bench_peers(pythons, frames, args.threads, args.runs, args.budget)
        elif args.peers and k == 0:
            print(f"(peers skipped: no venv under {args.peers}; see benchmarks/peers/README.md)")
        rounds.append(rows)
    summary = summarize_rounds(rounds)
    if args.rounds > 1:
        print(f"\nmedian over {args.rounds} rounds (x RetinaFace: the median of each round's ratio to RetinaFace MobileNet-0.25 at the same threads)")
        print(f"{'model':32s} {'backend':42s} {'thr':>3s} {'median ms':>9s} {'min':>7s} {'max':>7s} {'x RetinaFace':>12s}")
        for r in summary:
            ratio = f"{r['x_retinaface']:12.2f}" if r.get("x_retinaface") is not None else f"{'-':>12s}"
            print(f"{r['model']:32s} {r['backend']:42s} {r['threads']:>3d} {r['median_ms']:9.2f} {r['min_ms']:7.2f} {r['max_ms']:7.2f} {ratio}")
    if args.json:
        record = {
            "command": [sys.executable, *sys.argv], "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "frames": what, "load_average_before": load_before, "load_average_after": os.getloadavg(),
            "logical_cpus": os.cpu_count(), "physical_cores": physical_cores(), "rounds": rounds, "summary": summary,
        }  # fmt: skip
        Path(args.json).write_text(json.dumps(record, indent=1))
        print(f"\nwrote {args.json}")
    if args.no_split:
        sys.stdout.flush()
        return

    print("\nFaceBoxes 640x480, ONNX Runtime, 1 thread: network vs decode+NMS by candidate count")
    print(f"{'candidates':>10s} {'kept':>6s} {'net ms':>8s} {'post ms':>8s}")
    for r in faceboxes_split(frames, 1, args.runs):
        print(f"{r['candidates']:>10d} {r['kept']:>6d} {r['net_ms']:8.2f} {r['post_ms']:8.2f}")
    fb = [r for r in rounds[-1] if r["model"] == "faceboxes" and r["backend"] == "onnxruntime" and r["threads"] == 1]
    if fb:
        verdict = "meets" if fb[0]["fps"] >= 20 else "MISSES"
        print(f"\nFaceBoxes, ONNX Runtime, 1 thread: {fb[0]['fps']:.1f} FPS whole call ({verdict} the 20 FPS target)")
    sys.stdout.flush()


if __name__ == "__main__":
    from facespot.errors import FacespotError

    try:
        main()
    except FacespotError as exc:  # a missing or wrong model file: one line, not a traceback
        print(f"latency: error: {exc}", file=sys.stderr)
        sys.exit(2)
