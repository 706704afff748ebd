"""How long the official WIDER FACE protocol takes on the full val set (3,226 images).

Synthesises a realistic prediction folder from the official ``.mat`` ground truth: each face
is found with probability ``--recall`` as a jittered box (noise ~ ``--jitter`` of its size)
with a score that favours good boxes, and every image gets false positives until it holds
``--per-image`` detections. The folder is written in the official format to a temp dir, then
reading and evaluating are timed separately.

    python benchmarks/wider_eval_speed.py [--gt /work/shared/data/widerface/eval_tools]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from facespot.data.predictions import read_wider_predictions, write_wider_predictions
from facespot.data.wider_mat import read_wider_mat
from facespot.eval.wider import evaluate_wider

DEFAULT_GT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "widerface" / "eval_tools"


def synthesize(gt, per_image: int, recall: float, jitter: float, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for g in gt:
        b = g.boxes[(g.boxes[:, 2] > g.boxes[:, 0]) & (g.boxes[:, 3] > g.boxes[:, 1])]
        b = b[rng.random(len(b)) < recall]
        wh = b[:, 2:] - b[:, :2]
        noise = rng.normal(0.0, jitter, size=(len(b), 4)) * np.tile(wh, 2)
        found = b + noise
        found[:, 2:] = np.maximum(found[:, 2:], found[:, :2] + 1)
        err = np.abs(noise).mean(axis=1) / np.maximum(wh.mean(axis=1), 1)
        found_scores = np.clip(0.9 - 2 * err + rng.normal(0, 0.1, len(b)), 0.01, 1.0)
        n_fp = max(per_image - len(b), 0)
        w = np.maximum(g.boxes[:, 2].max() if len(g.boxes) else 1024, 64.0)
        xy = rng.uniform(0, w, size=(n_fp, 2))
        size = rng.uniform(8, 120, size=(n_fp, 1))
        fps = np.c_[xy, xy + size]
        fp_scores = rng.beta(1.2, 6.0, n_fp)
        det = np.r_[np.c_[found, found_scores], np.c_[fps, fp_scores]]
        out[g.key] = det
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gt", default=str(DEFAULT_GT), help="folder with the four official .mat files")
    ap.add_argument("--per-image", type=int, default=150, help="detections per image (faces found + false positives)")
    ap.add_argument("--recall", type=float, default=0.8)
    ap.add_argument("--jitter", type=float, default=0.08)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    gt = read_wider_mat(args.gt)
    t_gt = time.perf_counter() - t0
    preds = synthesize(gt, args.per_image, args.recall, args.jitter, args.seed)
    n = sum(len(v) for v in preds.values())
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_wider_predictions(tmp, preds)
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        read = read_wider_predictions(tmp, known={g.key for g in gt})
        t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = evaluate_wider(gt, read.boxes)
    t_eval = time.perf_counter() - t0

    print(f"{len(gt)} images, {n} detections ({n / len(gt):.0f} per image), {sum(len(g.boxes) for g in gt)} faces")
    print(f"{'step':<28}{'seconds':>9}")
    for name, t in [
        ("read .mat ground truth", t_gt),
        ("write prediction folder", t_write),
        ("read prediction folder", t_read),
        ("evaluate (3 settings)", t_eval),
        ("read + evaluate", t_read + t_eval),
    ]:
        print(f"{name:<28}{t:>9.2f}")
    print("AP  " + "  ".join(f"{k} {v:.4f}" for k, v in result.ap.items()))


if __name__ == "__main__":
    main()
