"""Accuracy of trained detectors beside MediaPipe's BlazeFace, on the real data on hand.

For every model given (and MediaPipe's short- and full-range BlazeFace when the peers venv
exists) this runs, through facespot's own commands:

* WIDER FACE val-dev (100 images): ``facespot detect --wider-out`` then ``facespot eval wider``
  (official protocol; easy / medium / hard AP);
* the Caltech Web Faces hold-out (``configs/splits/caltech_holdout.txt``): AP@0.5 and landmark
  error (NME, by inter-ocular distance) with ``facespot eval dataset``;
* the face-mask VOC hold-out (``configs/splits/facemask_holdout.txt``): AP@0.5.

and prints one table (the one in MODELS.md). Everything it writes goes to ``--out``.

    python benchmarks/model_report.py --model default --model blazeface=runs/bf/best.safetensors
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PEERS = ROOT / "benchmarks" / "peers" / "mediapipe_predict.py"


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}")


def facespot(*args: str) -> list[str]:
    return [sys.executable, "-m", "facespot", *args]


def holdouts(data: Path) -> list[tuple[str, Path, str, Path]]:
    """(key, data folder, format, include list) of each hold-out."""
    return [
        ("caltech", data / "caltech-webfaces", "caltech", ROOT / "configs/splits/caltech_holdout.txt"),
        ("facemask", data / "facemask-voc", "voc", ROOT / "configs/splits/facemask_holdout.txt"),
    ]


def eval_ours(label: str, spec: str, data: Path, out: Path, threads: int) -> dict:
    res: dict = {}
    wider = out / f"{label}_wider"
    run(facespot("detect", str(data / "wider-val-dev/images"), "--model", spec, "--threads", str(threads),
                 "--wider-out", str(wider), "--no-progress"))  # fmt: skip
    run(facespot("eval", "wider", "--pred", str(wider), "--gt", str(data / "widerface/eval_tools"),
                 "--json", str(out / f"{label}_wider.json")))  # fmt: skip
    res["wider"] = json.loads((out / f"{label}_wider.json").read_text())
    for key, folder, fmt, include in holdouts(data):
        dst = out / f"{label}_{key}.json"
        run(facespot("eval", "dataset", str(folder), "--format", fmt, "--include", str(include), "--model", spec,
                     "--threads", str(threads), "--label", label, "--no-progress", "--json", str(dst)))  # fmt: skip
        res[key] = json.loads(dst.read_text())
    return res


def eval_mediapipe(variant: str, python: str, data: Path, out: Path) -> dict:
    label = f"mediapipe_{variant}"
    res: dict = {}
    wider = out / f"{label}_wider"
    run([python, str(PEERS), "--model", variant, "--images", str(data / "wider-val-dev/images"), "--wider-out", str(wider)])
    run(facespot("eval", "wider", "--pred", str(wider), "--gt", str(data / "widerface/eval_tools"),
                 "--json", str(out / f"{label}_wider.json")))  # fmt: skip
    res["wider"] = json.loads((out / f"{label}_wider.json").read_text())
    for key, folder, fmt, include in holdouts(data):
        pred = out / f"{label}_{key}.jsonl"
        run([python, str(PEERS), "--model", variant, "--list", str(include), "--root", str(folder / "images"), "--json", str(pred)])
        dst = out / f"{label}_{key}.json"
        run(facespot("eval", "dataset", str(folder), "--format", fmt, "--include", str(include), "--pred", str(pred),
                     "--keypoint-map", "mediapipe", "--label", label, "--json", str(dst)))  # fmt: skip
        res[key] = json.loads(dst.read_text())
    return res


def table(results: dict[str, dict]) -> str:
    lines = [
        "| detector | WIDER-dev easy | medium | hard | Caltech hold-out AP@0.5 | Caltech NME (mean / median) | face-mask hold-out AP@0.5 |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        s = r["wider"]["settings"]
        lm = r["caltech"].get("landmarks")
        nme = f"{lm['mean']:.3f} / {lm['median']:.3f}" if lm else "—"
        lines.append(
            f"| {label} | {s['easy']['ap']:.3f} | {s['medium']['ap']:.3f} | {s['hard']['ap']:.3f} | "
            f"{r['caltech']['ap']:.3f} | {nme} | {r['facemask']['ap']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=[], metavar="[LABEL=]SPEC",
                    help="what `facespot detect --model` takes; repeatable")  # fmt: skip
    ap.add_argument("--peers-python", default="/tmp/peers-venv/bin/python", help="'' to skip MediaPipe")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="/tmp/facespot_model_report")
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    if not (data / "wider-val-dev").is_dir():
        raise SystemExit(f"{data}: the shared data (wider-val-dev, caltech-webfaces, facemask-voc) is not there")
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for m in args.model:
        label, _, spec = m.rpartition("=")
        label = label or Path(spec).stem
        results[label] = eval_ours(label, spec, data, out, args.threads)
    if args.peers_python and Path(args.peers_python).exists():
        for variant in ("short", "full"):
            results[f"MediaPipe BlazeFace {variant}-range"] = eval_mediapipe(variant, args.peers_python, data, out)
    (out / "report.json").write_text(json.dumps({k: {kk: {x: y for x, y in vv.items() if x != "pr_curve"} if isinstance(vv, dict) else vv
                                                     for kk, vv in v.items()} for k, v in results.items()}, default=str))  # fmt: skip
    print(table(results))


if __name__ == "__main__":
    main()
