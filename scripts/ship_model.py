"""Ship trained weights inside the package: calibrate the score scale, export ONNX, register.

    python scripts/ship_model.py runs/spotnet_s/best.safetensors spotnet-s --recipe configs/spotnet_s.yaml \
        --file spotnet_s --default --description "SpotNet-s, WIDER training split + ..."

0. Models with score groups (SpotNet) get one logit offset per group, chosen on the recipe's
   WIDER training images by the official protocol (needs ``data.wider_gt_dir``;
   ``--no-group-offsets`` skips it): :func:`facespot.train.calibrate.choose_group_offsets`.
1. Calibrate (:mod:`facespot.train.calibrate`) on the recipe's *training* images: the
   lowest score reaching ``--precision`` on annotated photos, at most ``--max-fp`` false
   faces per face-free photo, none on synthetic blank / noise frames; the face logit is
   shifted so that score becomes 0.5 (rankings and AP unchanged).
2. Save ``src/facespot/weights/FILE.safetensors`` (the calibration in its metadata), export
   ``FILE.onnx`` with ``facespot export`` (checked against PyTorch), and register both in
   the manifest with their SHA-256 (``--default`` makes it ``facespot.load()``'s model).

Maintainers' tool: run from the repository root after training.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights")
    p.add_argument("name", help="packaged name, e.g. spotnet-s")
    p.add_argument("--recipe", required=True, help="the recipe the weights were trained with (its data.train sources)")
    p.add_argument("--file", help="file stem inside facespot/weights (default: the name with _)")
    p.add_argument("--faces", type=int, default=300, help="annotated training photos to calibrate on")
    p.add_argument("--blanks", type=int, default=70, help="synthetic blank / noise frames")
    p.add_argument("--precision", type=float, default=0.9)
    p.add_argument("--max-fp", type=float, default=0.01, help="false faces per face-free training photo (default 0.01)")
    p.add_argument("--no-group-offsets", action="store_true", help="keep the score groups' offsets as they are")
    p.add_argument("--default", action="store_true")
    p.add_argument("--description", default="")
    p.add_argument("--folder", default=str(ROOT / "src" / "facespot" / "weights"), help="weights folder with the manifest (default: the package's)")
    args = p.parse_args()

    from facespot.cli import main as cli
    from facespot.data.negatives import synthetic_records
    from facespot.models.base import FaceModel
    from facespot.models.io import load_model, save_weights
    from facespot.runtime.detector import Detector
    from facespot.runtime.packaged import add_packaged
    from facespot.train.calibrate import calibrate, choose_group_offsets, group_candidates
    from facespot.train.config import load_config
    from facespot.train.sources import load_source

    cfg = load_config(args.recipe)
    faces, negatives, wider = [], [], []
    for s in cfg.data.train:
        if s.format == "synthetic":
            continue
        recs = load_source(s, cfg.source)
        (negatives if all(len(r) == 0 for r in recs) else faces).extend(recs)
        if s.format == "wider":
            wider.extend(recs)
    rng = np.random.default_rng(0)
    faces = [faces[i] for i in sorted(rng.choice(len(faces), min(args.faces, len(faces)), replace=False))]
    blanks = synthetic_records(args.blanks, seed=1234)  # other frames than the training ones (seed 0)

    model = load_model(args.weights)
    if type(model).shift_face_logit is FaceModel.shift_face_logit:  # before minutes of calibration, not after
        print(f"ship_model: {type(model).__name__} cannot shift its face logit (calibration needs it); implement shift_face_logit", file=sys.stderr)
        return 2
    offsets = None
    if hasattr(model, "score_groups") and not args.no_group_offsets:
        if not (wider and cfg.data.wider_gt_dir):
            print("ship_model: score-group offsets need a WIDER training source and data.wider_gt_dir in the recipe "
                  "(or --no-group-offsets)", file=sys.stderr)
            return 2
        from facespot.data.wider_mat import read_wider_mat

        gt = read_wider_mat(cfg.data.wider_gt_dir)  # the easy / medium / hard lists of every WIDER val image
        known = {g.key for g in gt}
        wider = [r for r in wider if r.name in known]
        if not wider:
            print(f"ship_model: none of the recipe's WIDER training images is in {cfg.data.wider_gt_dir}'s ground truth "
                  "(score-group offsets need the WIDER val lists; or --no-group-offsets)", file=sys.stderr)
            return 2
        detector = Detector.from_model(model, "onnxruntime", score_threshold=0.02)
        done = [0]

        def tick() -> None:
            done[0] += 1
            if done[0] % 500 == 0 or done[0] == len(wider):
                print(f"  score groups: {done[0]}/{len(wider)} WIDER training images", flush=True)

        cands = group_candidates(detector, wider, progress=tick)
        offsets = choose_group_offsets(cands, gt, int(model.score_groups(64, 64).max()) + 1)
        print(f"score groups on {len(wider)} WIDER training images: {offsets.summary()}")
        model.add_score_offsets(offsets.offsets)
    detector = Detector.from_model(model, "onnxruntime", score_threshold=0.02)
    cal = calibrate(detector, faces, negatives, blanks, args.precision, args.max_fp)
    print(f"calibration on {len(faces)} annotated, {len(negatives)} face-free, {len(blanks)} synthetic training images: {cal.summary()}")
    model.shift_face_logit(cal.logit_shift)

    stem = args.file or args.name.replace("-", "_")
    folder = Path(args.folder)
    # both files are written and checked aside, then moved in: a failed export leaves the
    # shipped pair (and the manifest's hashes of it) as they were
    with tempfile.TemporaryDirectory(dir=folder, prefix=".ship-") as tmp:
        staged = save_weights(model, Path(tmp) / f"{stem}.safetensors", {
            "calibrated_threshold": f"{cal.threshold:.6f}", "calibration": cal.summary(), "source": Path(args.weights).name,
            **({"score_groups": offsets.summary()} if offsets is not None else {}),
        })
        if cli(["export", str(staged), "--onnx", str(Path(tmp) / f"{stem}.onnx")]) != 0:
            return 1
        weights, onnx = folder / f"{stem}.safetensors", folder / f"{stem}.onnx"
        os.replace(staged, weights)
        os.replace(Path(tmp) / f"{stem}.onnx", onnx)
    add_packaged(weights, args.name, folder, default=args.default, description=args.description, onnx=onnx)
    print(f"registered {args.name!r}{' as the default' if args.default else ''}: {weights.name}, {onnx.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
