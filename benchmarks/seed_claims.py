"""The seed projects' own claims, checked on the data at hand, in one run; prints one table each.

1. **The YOLO loss is weak on crowds of small faces**: AP (official protocol, easy / medium /
   hard) of each ``--model`` on the ``wider-val-eval`` images holding many faces (``>= --crowd``
   annotated faces) against those holding few (``<= --few``).
2. **PoolResNet is as accurate as ResNet, but faster**: whole-call latency of the YOLO detector
   with each backbone per 640x480 frame, one after the other on the same frames (untrained
   weights time like trained ones; accuracy needs a trained ResNet-18 YOLO, passed with
   ``--resnet-model`` when there is one).
3. **Tiny Faces' image pyramid helps hard faces**: AP of ``--pyramid-model`` on all of
   ``wider-val-eval`` with and without ``--multiscale``.

    python benchmarks/seed_claims.py --model yolo-poolresnet --model grid-mobilenetv2 --model default \\
        --pyramid-model tinyfaces-r18 --out /tmp/seed_claims

Needs ``../shared/data`` (skips with a message without it). Everything it writes goes under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "benchmarks"))
import latency  # noqa: E402  (frames and timing)


def facespot(*args: str) -> list[str]:
    return [sys.executable, "-m", "facespot", *args]


def run(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")


def image_lists(data: Path, out: Path, crowd: int, few: int) -> dict[str, Path]:
    """Image-name lists of wider-val-eval: all, crowds (>= crowd faces), few faces (<= few)."""
    import warnings

    from facespot.data.formats import open_records

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recs = open_records(data / "wider-val-eval", "wider", split="val")
    lists = {"all": [r.name for r in recs], f"crowd (>= {crowd} faces)": [r.name for r in recs if len(r) >= crowd],
             f"few (<= {few} faces)": [r.name for r in recs if len(r) <= few]}  # fmt: skip
    paths = {}
    for key, names in lists.items():
        p = out / f"list_{len(paths)}.txt"
        p.write_text("\n".join(names) + "\n")
        paths[f"{key}: {len(names)} images"] = p
    return paths


def wider_ap(pred: Path, images: Path, data: Path, out: Path) -> dict[str, float]:
    dst = out / f"{pred.name}_{images.stem}.json"
    run(facespot("eval", "wider", "--pred", str(pred), "--gt", str(data / "widerface/eval_tools"), "--images", str(images),
                 "--json", str(dst)))  # fmt: skip
    got = json.loads(dst.read_text())["settings"]
    return {s: got[s]["ap"] for s in ("easy", "medium", "hard")}


def fmt(d: dict[str, float]) -> str:
    return " / ".join(f"{d[s]:.3f}" for s in ("easy", "medium", "hard"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=[], help="packaged name or weights file; repeatable")
    ap.add_argument("--pyramid-model", help="a Tiny Faces model: AP with and without --multiscale")
    ap.add_argument("--resnet-model", help="a trained YOLO with the ResNet-18 backbone, for the accuracy half of claim 2")
    ap.add_argument("--crowd", type=int, default=20)
    ap.add_argument("--few", type=int, default=3)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default="/tmp/facespot_seed_claims")
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    if not (data / "wider-val-eval" / "images").is_dir():
        print(f"seed_claims: skipped: {data / 'wider-val-eval'} is not there")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    lists = image_lists(data, out, args.crowd, args.few)
    images = data / "wider-val-eval" / "images"

    print("\n## 1. AP on crowds and on few-face photos (wider-val-eval, official protocol, easy / medium / hard)\n")
    models = args.model + ([args.resnet_model] if args.resnet_model else [])
    rows = []
    for m in models:
        pred = out / f"pred_{Path(m).stem}"
        run(facespot("detect", str(images), "--model", m, "--wider-out", str(pred), "--no-progress"))
        rows.append([m] + [fmt(wider_ap(pred, p, data, out)) for p in lists.values()])
    print("| model | " + " | ".join(lists) + " |\n|" + "---|" * (len(lists) + 1))
    for r in rows:
        print("| " + " | ".join(r) + " |")

    print("\n## 2. YOLO backbones: whole call per 640x480 frame (ONNX Runtime, 1 thread, untrained weights)\n")
    frames, what = latency.load_frames(args.frames)
    import torch

    from facespot.models import build
    from facespot.runtime.detector import Detector

    times = {}
    for backbone in ("resnet18", "pool_resnet"):
        torch.manual_seed(0)
        det = Detector.from_model(build("yolo", backbone=backbone).eval(), "onnxruntime", threads=1, trained=False)
        t = latency.time_calls(lambda f, d=det: d(f), frames, args.runs, 60.0)
        times[backbone] = float(np.median(t)) * 1000
    print(f"{what}\n\n| backbone | ms | ratio |\n|---|---|---|")
    for k, v in times.items():
        print(f"| {k} | {v:.1f} | {v / times['resnet18']:.2f} |")

    if args.pyramid_model:
        print("\n## 3. Tiny Faces with and without its image pyramid (all of wider-val-eval)\n")
        allist = next(iter(lists.values()))
        res = {}
        for label, extra in (("one scale", []), ("--multiscale", ["--multiscale"])):
            pred = out / f"pred_pyramid_{len(res)}"
            run(facespot("detect", str(images), "--model", args.pyramid_model, "--wider-out", str(pred), "--no-progress", *extra))
            res[label] = fmt(wider_ap(pred, allist, data, out))
        print("| Tiny Faces | easy / medium / hard |\n|---|---|")
        for k, v in res.items():
            print(f"| {k} | {v} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
