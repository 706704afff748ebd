"""What every peer script shares: image lists, output formats, CPU pinning, timing, the CLI.

Imports nothing of facespot's and nothing but numpy at module level (OpenCV is imported by
:func:`main` after the process is pinned), so each peer venv runs it as is. A peer script
defines :class:`Peer` entries (how to build ``fn(bgr) -> list[face dict]`` at a score threshold
and a thread count) and calls :func:`main`; the CLI is then the same for all of them:

* ``--images DIR`` (every image under it) or ``--list FILE --root DIR`` (images named in a list,
  extension optional) as the input;
* ``--wider-out DIR``: WIDER FACE prediction files ``DIR/<event>/<name>.txt`` (image name line,
  count line, ``x y w h score`` lines; event = the image's parent folder name), the layout
  ``facespot eval wider --pred DIR`` reads;
* ``--json FILE``: one JSON line per image, ``{"source", "width", "height", "faces": [{"box":
  [x1, y1, x2, y2], "score", "keypoints"}]}`` in pixels: the format of ``facespot detect --json``
  that ``facespot eval dataset --pred`` reads (``source`` relative to ``--images`` / ``--root``);
* ``--min-score S|default``: the lowest score kept. It defaults to the peer's low threshold (so
  AP sees the low-score tail); ``default`` is the score a user of the package gets when passing
  nothing (false positives per image are counted there);
* ``--latency FRAMES.npy``: time the whole call (colour conversion, the library's own resizing,
  inference, decoding, NMS, our conversion to face dicts) on each (N, H, W, 3) uint8 BGR frame
  at the peer's default threshold; prints one JSON list of rows.

Each image is given at its native resolution; the peer's own code decides what it resizes.
Threads: ``--threads N`` pins the process to N CPUs (``os.sched_setaffinity``) before any
library starts a thread pool, and each peer also sets its library's own thread option
where there is one. Boxes are clipped to the image, as facespot's detector clips its own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

Face = dict  # {"box": [x1, y1, x2, y2], "score": float, "keypoints": [[x, y], ...] | None}
DetectFn = Callable[[np.ndarray], list]


@dataclass
class Peer:
    """One detector a peer venv offers.

    ``build(min_score, threads)`` returns ``(fn, close)``: ``fn(bgr) -> list[Face]`` is the whole
    user-visible call; ``close()`` frees it (may be ``None``).
    """

    label: str
    default_threshold: float
    low_threshold: float
    build: Callable[[float, int], tuple[DetectFn, Callable[[], None] | None]]
    version: Callable[[], str]
    note: str = ""


def pin_cpus(threads: int) -> None:
    """Keep this process (and every thread a library starts later) on ``threads`` CPUs:
    MediaPipe and the OpenMP build in yuface have no usable thread option."""
    try:
        cpus = sorted(os.sched_getaffinity(0))[:threads]
        os.sched_setaffinity(0, set(cpus))
    except (AttributeError, OSError):
        pass
    # OpenMP pools read this when they start (yuface's libgomp, torch's OpenMP)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def ort_options(threads: int):
    """ONNX Runtime session options as facespot's own backend sets them: ``threads`` intra-op
    threads, one inter-op, sequential (for the peers that run an ONNX graph)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return so


def fail(prog: str, msg: str) -> None:
    print(f"{prog}: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def walk_images(folder: Path) -> list[tuple[Path, str]]:
    """Images under ``folder`` (recursive, sorted, symlinks followed) as ``(path, name relative to folder)``."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            if p.suffix.lower() in IMAGE_EXTENSIONS:
                out.append((p, p.relative_to(folder).as_posix()))
    return out


def _resolve(root: Path, item: str) -> Path | None:
    p = Path(item) if Path(item).is_absolute() else root / item
    if p.is_file():
        return p
    if not p.suffix or p.suffix.lower() not in IMAGE_EXTENSIONS:  # names listed without extension
        for ext in IMAGE_EXTENSIONS:
            for cand in (p.with_name(p.name + ext), p.with_name(p.name + ext.upper())):
                if cand.is_file():
                    return cand
    return None


def list_images(list_file: Path, root: Path, prog: str = "peer") -> list[tuple[Path, str]]:
    """Images named in a list file (one per line, ``#`` comments; extension optional)."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        fail(prog, f"{list_file}: cannot read ({exc.strerror})")
    out = []
    for lineno, raw in enumerate(lines, 1):
        item = raw.split("#", 1)[0].strip()
        if not item:
            continue
        p = _resolve(root, item)
        if p is None:
            fail(prog, f"{list_file}:{lineno}: image {item!r} not found under {root}")
        try:
            name = p.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            name = p.name
        out.append((p, name))
    if not out:
        fail(prog, f"{list_file}: the list names no image")
    return out


def clip_face(x1: float, y1: float, x2: float, y2: float, score: float, width: int, height: int,
              keypoints=None) -> Face | None:  # fmt: skip
    """A face dict with its box clipped to the image, or None when nothing is left."""
    x1, x2 = min(max(float(x1), 0.0), width), min(max(float(x2), 0.0), width)
    y1, y2 = min(max(float(y1), 0.0), height), min(max(float(y2), 0.0), height)
    if x2 <= x1 or y2 <= y1:
        return None
    kps = [[round(float(x), 2), round(float(y), 2)] for x, y in keypoints] if keypoints is not None else None
    return {"box": [round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)], "score": round(float(score), 5),
            "keypoints": kps or None}  # fmt: skip


def write_wider(folder: Path, name: str, faces: list[Face]) -> None:
    """``folder/<event>/<stem>.txt`` with ``x y w h score`` lines (event = parent folder)."""
    p = Path(name)
    event = p.parent.name or "images"
    path = folder / event / f"{p.stem}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(
        f"{f['box'][0]:.3f} {f['box'][1]:.3f} {f['box'][2] - f['box'][0]:.3f} {f['box'][3] - f['box'][1]:.3f} {f['score']:.6f}\n"
        for f in faces
    )
    path.write_text(f"{p.name}\n{len(faces)}\n{rows}", encoding="utf-8")


def time_calls(fn, frames, runs: int, budget: float, warmup: int = 2) -> list[float]:
    """Seconds per call of ``fn(frame)``: ``warmup`` untimed calls, then up to ``runs`` timed
    calls cycling through ``frames`` while under ``budget`` seconds (at least 3)."""
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


def latency_row(model: str, backend: str, threads: int, times: list[float]) -> dict:
    med = statistics.median(times) * 1000
    return {"model": model, "backend": backend, "threads": threads, "median_ms": med,
            "p90_ms": float(np.percentile(times, 90)) * 1000, "fps": 1000 / med, "runs": len(times),
            "net_ms": None, "post_ms": None}  # fmt: skip


def main(prog: str, peers: dict[str, Peer], argv: list[str] | None = None, doc: str | None = None) -> int:
    ap = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", metavar="DIR", help="every image under this folder (recursive)")
    src.add_argument("--list", metavar="FILE", help="images named in this file, one per line (resolved under --root)")
    src.add_argument("--latency", metavar="FRAMES.npy", help="time the whole call on these (N, H, W, 3) BGR frames")
    ap.add_argument("--root", metavar="DIR", help="folder the --list names are relative to (default: the list's folder)")
    ap.add_argument("--model", choices=tuple(peers), default=next(iter(peers)), help=f"default: {next(iter(peers))}")
    ap.add_argument("--min-score", default=None, metavar="S|default",
                    help="lowest score kept: a number, or 'default' (the package's own default threshold); "
                         "default: the peer's low threshold for AP (" +
                         ", ".join(f"{k} {p.low_threshold}" for k, p in peers.items()) + ")")  # fmt: skip
    ap.add_argument("--wider-out", metavar="DIR", help="write WIDER prediction files DIR/<event>/<name>.txt")
    ap.add_argument("--json", metavar="FILE", help="write facespot 'detect --json' lines")
    ap.add_argument("--threads", type=int, default=1, help="CPUs to pin the process to (default 1)")
    ap.add_argument("--runs", type=int, default=30, help="--latency: timed calls at most (default 30)")
    ap.add_argument("--budget", type=float, default=30.0, help="--latency: seconds per model at most (default 30)")
    args = ap.parse_args(argv)
    peer = peers[args.model]
    if args.latency is None and not args.wider_out and not args.json:
        fail(prog, "nothing to write: give --wider-out DIR and/or --json FILE")
    if args.min_score is None:
        min_score = peer.low_threshold if args.latency is None else peer.default_threshold
    elif args.min_score == "default":
        min_score = peer.default_threshold
    else:
        try:
            min_score = float(args.min_score)
        except ValueError:
            fail(prog, f"--min-score: expected a number or 'default', got {args.min_score!r}")
    pin_cpus(args.threads)

    if args.latency is not None:
        frames = list(np.load(args.latency))
        fn, close = peer.build(min_score, args.threads)
        try:
            times = time_calls(fn, frames, args.runs, args.budget)
        finally:
            if close:
                close()
        print(json.dumps([latency_row(peer.label, peer.version(), args.threads, times)]))
        return 0

    if args.images:
        folder = Path(args.images)
        if not folder.is_dir():
            fail(prog, f"{folder}: not a folder")
        images = walk_images(folder)
        if not images:
            fail(prog, f"{folder}: no images found")
    else:
        list_file = Path(args.list)
        images = list_images(list_file, Path(args.root) if args.root else list_file.parent, prog)
    if args.wider_out:
        keys = [(Path(n).parent.name or "images", Path(n).stem) for _, n in images]
        if len(set(keys)) != len(keys):
            fail(prog, "two images map to the same WIDER file <event>/<name>.txt (same folder name and stem)")

    import cv2

    fn, close = peer.build(min_score, args.threads)
    json_file = None
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        json_file = open(args.json, "w", encoding="utf-8")
    n_faces = n_failed = 0
    t0 = time.perf_counter()
    try:
        for i, (path, name) in enumerate(images, 1):
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                n_failed += 1
                msg = f"{path}: cannot decode image"
                print(f"{prog}: warning: {msg}", file=sys.stderr)
                if json_file is not None:
                    json_file.write(json.dumps({"source": name, "error": msg}) + "\n")
                continue
            h, w = bgr.shape[:2]
            try:
                faces = sorted(fn(bgr), key=lambda f: -f["score"])
            except Exception as exc:  # the library's own failure on this image (e.g. MTCNN on 1x1)
                n_failed += 1
                msg = f"{path}: the detector raised {type(exc).__name__}: {exc}"
                print(f"{prog}: warning: {msg}", file=sys.stderr)
                if json_file is not None:
                    json_file.write(json.dumps({"source": name, "width": w, "height": h, "error": msg}) + "\n")
                continue
            n_faces += len(faces)
            if json_file is not None:
                json_file.write(json.dumps({"source": name, "width": w, "height": h, "faces": faces}) + "\n")
            if args.wider_out:
                write_wider(Path(args.wider_out), name, faces)
            if i % 100 == 0 or i == len(images):
                rate = i / max(time.perf_counter() - t0, 1e-9)
                print(f"[{args.model}] {i}/{len(images)} images, {n_faces} detections, {rate:.2f} img/s",
                      file=sys.stderr, flush=True)  # fmt: skip
    finally:
        if close:
            close()
        if json_file is not None:
            json_file.close()
    print(f"{peer.label} ({peer.version()}): {len(images) - n_failed} image(s), {n_faces} detection(s) "
          f"at score >= {min_score}, {n_failed} unreadable or failed")  # fmt: skip
    return 0 if n_failed < len(images) else 1
