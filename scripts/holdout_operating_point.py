"""What users would meet at the default threshold, read on a held-out list of WIDER *training*
images: recall of faces >= 16 / 24 / 32 px and precision (with its 90% interval) at 0.5, for
packaged models and shipped (calibrated) weights files side by side.

Why: a release candidate for the default must keep precision >= 0.95 and recall of faces >= 24 px
>= 0.75 at 0.5 on ``wider-val-eval`` (MODELS.md), but that split is for reporting. The
validation hold-out (152 images, checkpoint choice) says beforehand, on images no release is
calibrated on, whether a candidate's operating point is better than the shipped one's; a
candidate that is not better there is not worth a release.

    bash scripts/release_default.sh W "DESC"    # or ship_model.py ... --folder COPY: a calibrated file
    python scripts/holdout_operating_point.py --model default --model src/facespot/weights/spotnet_s2-NEW.safetensors

Needs ../data/wider-train (../shared/tools/wider_val_train.sh). Maintainers' tool: run from the
repository root.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPLITS = {"validation": "configs/splits/wider_val_train_validation.txt",
          "calibration": "configs/splits/wider_val_train_calibration.txt"}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="packaged name or calibrated weights (repeat)")
    ap.add_argument("--split", choices=sorted(SPLITS), default="validation")
    ap.add_argument("--data", default=str(ROOT.parent / "data" / "wider-train"), help="the WIDER val training split's folder")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    from facespot.data.formats import open_records
    from facespot.eval.operating_point import wider_folder_operating_point
    from facespot.train.sources import read_name_list

    data = Path(args.data)
    images = data / "WIDER_val" / "images"
    if not images.is_dir():
        print(f"holdout_operating_point: no {images}: lay the data out first (../shared/tools/wider_val_train.sh)", file=sys.stderr)
        return 2
    names = sorted(read_name_list(str(ROOT / SPLITS[args.split]), str(ROOT)))
    missing = [n for n in names if not (images / f"{n}.jpg").is_file()]
    if missing:
        print(f"holdout_operating_point: {len(missing)} listed image(s) missing under {images} (first: {missing[0]})", file=sys.stderr)
        return 2
    listed = set(names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        records = [r for r in open_records(data, "wider", split="val", drop_invalid=False) if r.name in listed]
    facespot = [sys.executable, "-m", "facespot"]
    print(f"{args.split} hold-out: {len(records)} images, at {args.threshold:g}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        for n in names:  # <event>/<name>.jpg, so that --wider-out names its files as the protocol does
            (folder / n).parent.mkdir(parents=True, exist_ok=True)
            os.symlink((images / f"{n}.jpg").resolve(), folder / f"{n}.jpg")
        for i, model in enumerate(args.model):
            pred = Path(tmp) / f"pred{i}"
            cmd = facespot + ["detect", str(folder), "--model", model, "--threshold", str(args.threshold),
                              "--wider-out", str(pred), "--no-progress"]  # fmt: skip
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            res = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if res.returncode != 0:
                print(f"holdout_operating_point: {model}: {res.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                return 1
            print(f"{model}: {wider_folder_operating_point(records, pred, args.threshold).summary()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
