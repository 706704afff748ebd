"""Ship trained weights inside the package: calibrate the score scale, export ONNX, register.

    python scripts/checkpoint_weights.py ../snapshots/spotnet_s2/epoch_024.pt W.safetensors   # an epoch's EMA weights
    python scripts/ship_model.py W.safetensors spotnet-s2 --recipe configs/spotnet_s2.yaml --file spotnet_s2 \\
        --half --recall-offsets --default --description "SpotNet-s with landmarks, ..."
    (first as a trial: ``--folder COPY``, COPY a copy of ``src/facespot/weights``; check the gates on its files;
    for the default ``bash scripts/release_default.sh W.safetensors DESCRIPTION`` does both)

0. Models with score groups (SpotNet) get one logit offset per group, chosen on the recipe's
   ``data.calibration`` WIDER images (held out of training and validation) by the official
   protocol (needs ``data.wider_gt_dir``; ``--no-group-offsets`` skips it):
   :func:`facespot.shipping.calibrate.choose_group_offsets`.
1. Calibrate (:mod:`facespot.shipping.calibrate`): the lowest score at which detections on the
   ``data.calibration`` images reach ``--precision``, at most ``--max-fp`` false faces per
   face-free training photo (the recipe's ``negatives`` sources), none on synthetic blank /
   noise frames; the face logit is shifted so that score becomes 0.5 (rankings and AP unchanged).
2. Export ONNX (checked against PyTorch by ``facespot export``), then measure the exported file
   -- what will ship -- at 0.5 on the same images: every budget must hold, or nothing ships.
   ``--half`` stores both files' weights as float16 (half the bytes, float32 compute; tensors
   under 256 values stay float32): calibration and the check then run on the rounded weights,
   exported as they ship.
3. Move both files into ``src/facespot/weights/`` under names that carry their content hash
   (``FILE-<sha256[:8]>.safetensors`` / ``.onnx``), then switch the manifest in one atomic
   replace and remove the files it no longer lists: a failure at any step leaves the packaged
   models (the default included) loading and passing their hash checks.

Refused before any work: calibration images that are also validation images of the recipe or
images of the evaluation split (``--eval-split``, default ``../shared/data/wider-val-eval``).

Maintainers' tool: run from the repository root after training.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _progress(what: str, total: int):
    state = {"n": 0, "t": time.perf_counter()}

    def tick() -> None:
        state["n"] += 1
        if state["n"] % 100 == 0 or state["n"] == total:
            rate = state["n"] / max(time.perf_counter() - state["t"], 1e-9)
            print(f"  {what}: {state['n']}/{total} images, {rate:.1f} img/s", flush=True)

    return tick


def _eval_split_names(folder: Path) -> set[str]:
    """``event/stem`` of every image of the evaluation split (WIDER layout: images/<event>/<name>.jpg)."""
    images = folder / "images"
    if not images.is_dir():
        return set()
    return {f"{p.parent.name}/{p.stem}" for p in images.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights")
    p.add_argument("name", help="packaged name, e.g. spotnet-s2")
    p.add_argument("--recipe", required=True, help="the recipe the weights were trained with (data.calibration, negatives)")
    p.add_argument("--file", help="file stem inside facespot/weights (default: the name with _)")
    p.add_argument("--blanks", type=int, default=70, help="synthetic blank / noise frames")
    p.add_argument("--precision", type=float, default=0.95, help="lowest precision at 0.5 on the calibration images (default 0.95)")
    p.add_argument("--max-fp", type=float, default=0.01, help="false faces per face-free training photo at 0.5 (default 0.01)")
    p.add_argument("--no-group-offsets", action="store_true", help="keep the score groups' offsets as they are")
    p.add_argument("--recall-offsets", action="store_true",
                   help="then nudge the score groups' offsets so that the most faces >= --recall-height px pass at 0.5 "
                        "with every budget met, easy / medium / hard AP each within --ap-tolerance (facespot.shipping.calibrate.choose_recall_offsets)")
    p.add_argument("--recall-height", type=int, default=24, help="--recall-offsets: the faces whose recall counts (default 24 px)")
    p.add_argument("--ap-tolerance", type=float, default=0.01, help="--recall-offsets: most AP it may cost in any WIDER setting (default 0.01)")
    p.add_argument("--eval-split", default=str(ROOT.parent / "shared" / "data" / "wider-val-eval"),
                   help="the evaluation split's folder: none of its images may be used here")
    p.add_argument("--half", action="store_true",
                   help="store both files' weights as float16 (half the size; computed in float32; the budget check runs on them)")
    p.add_argument("--default", action="store_true")
    p.add_argument("--description", default="")
    p.add_argument("--folder", default=str(ROOT / "src" / "facespot" / "weights"), help="weights folder with the manifest (default: the package's)")
    args = p.parse_args()

    import facespot
    from facespot.cli import main as cli
    from facespot.data.negatives import synthetic_records
    from facespot.errors import FacespotError
    from facespot.models.base import FaceModel
    from facespot.models.io import load_model, save_weights
    from facespot.runtime.detector import Detector
    from facespot.runtime.packaged import add_packaged, sha256_file
    from facespot.shipping.calibrate import (calibrate, check_budgets, choose_group_offsets, choose_recall_offsets, group_candidates,
                                             wider_ap_search)
    from facespot.train.config import load_config
    from facespot.train.sources import load_source, load_sources

    def fail(msg: str, code: int = 2) -> int:
        print(f"ship_model: {msg}", file=sys.stderr)
        return code

    try:
        cfg = load_config(args.recipe)
        if not cfg.data.calibration:
            return fail(f"{args.recipe}: data.calibration lists no images held out for calibration")
        faces = load_sources(cfg.data.calibration, cfg.source)
        val = load_sources(cfg.data.val, cfg.source) if cfg.data.val else []
        negatives = [r for s in cfg.data.train if s.format == "negatives" for r in load_source(s, cfg.source)]
        model = load_model(args.weights)
    except FacespotError as exc:
        return fail(str(exc))
    # what calibration may never see: validation images (checkpoint choice) and the evaluation split
    val_files = {str(Path(r.image_path).resolve()) for r in val}
    in_val = [r.name for r in faces if str(Path(r.image_path).resolve()) in val_files]
    in_eval = sorted({r.name for r in faces} & _eval_split_names(Path(args.eval_split)))
    train_files = {str(Path(r.image_path).resolve()) for s in cfg.data.train if s.format != "synthetic"
                   for r in load_source(s, cfg.source)}  # fmt: skip
    in_train = [r.name for r in faces if str(Path(r.image_path).resolve()) in train_files]
    for what, names in (("validation images of the recipe", in_val), ("images of the evaluation split", in_eval),
                        ("training images of the recipe", in_train)):  # fmt: skip
        if names:
            return fail(f"{len(names)} calibration image(s) are {what} (first: {names[0]}); calibrate on held-out images only")
    if not negatives:
        return fail(f"{args.recipe}: no face-free training source (format: negatives) to measure false faces on")
    blanks = synthetic_records(args.blanks, seed=1234)  # other frames than the training ones (seed 0)
    if type(model).shift_face_logit is FaceModel.shift_face_logit:  # before minutes of calibration, not after
        return fail(f"{type(model).__name__} cannot shift its face logit (calibration needs it); implement shift_face_logit")
    print(f"calibration set: {len(faces)} held-out annotated images ({sum(len(r) for r in faces)} faces), "
          f"{len(negatives)} face-free training photos, {len(blanks)} synthetic frames", flush=True)

    offsets = recall = None
    if args.recall_offsets and (args.no_group_offsets or not hasattr(model, "score_groups")):
        return fail("--recall-offsets moves score-group offsets: it needs a model with score groups and no --no-group-offsets")
    if hasattr(model, "score_groups") and not args.no_group_offsets:
        wider = [r for s in cfg.data.calibration if s.format == "wider" for r in load_source(s, cfg.source)]
        if not (wider and cfg.data.wider_gt_dir):
            return fail("score-group offsets need WIDER images in data.calibration and data.wider_gt_dir (or --no-group-offsets)")
        from facespot.data.wider_mat import read_wider_mat

        gt = read_wider_mat(cfg.data.wider_gt_dir)  # the easy / medium / hard lists of every WIDER val image
        known = {g.key for g in gt}
        wider = [r for r in wider if r.name in known]
        if not wider:
            return fail(f"none of the calibration images is in {cfg.data.wider_gt_dir}'s ground truth (or --no-group-offsets)")
        detector = Detector.from_model(model, "onnxruntime", score_threshold=0.02)
        cands = group_candidates(detector, wider, progress=_progress("score groups", len(wider)))
        offsets = choose_group_offsets(cands, gt, int(model.score_groups(64, 64).max()) + 1)
        print(f"score groups on {len(wider)} held-out WIDER images: {offsets.summary()}", flush=True)
        chosen = offsets.offsets
        if args.recall_offsets:
            face_cands = cands if [r.name for r in faces] == [r.name for r in wider] else group_candidates(
                detector, faces, progress=_progress("recall offsets, annotated images", len(faces)))
            neg_cands = group_candidates(detector, negatives, progress=_progress("recall offsets, face-free photos", len(negatives)))
            blank_cands = group_candidates(detector, blanks, progress=_progress("recall offsets, blank frames", len(blanks)))
            recall = choose_recall_offsets(faces, face_cands, neg_cands, blank_cands, chosen, args.precision, args.max_fp,
                                           args.recall_height, wider_ap_search(gt, cands), args.ap_tolerance)  # fmt: skip
            print(f"score groups for recall on the calibration images: {recall.summary()}", flush=True)
            chosen = recall.offsets
        model.add_score_offsets(chosen)
    n = len(faces) + len(negatives) + len(blanks)
    stem = args.file or args.name.replace("-", "_")
    folder = Path(args.folder)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".ship-") as tmp:
        if args.half:
            # calibrate the numbers that ship: float16-rounded weights, BatchNorm folded into them,
            # as the exported file computes them (calibrated in float32 and rounded afterwards, the
            # campaign's epoch 69 counted one detection more at 0.5: precision 0.9492 < 0.95, refused)
            uncalibrated = save_weights(model, Path(tmp) / "uncalibrated.safetensors", half=True)
            if cli(["export", str(uncalibrated), "--onnx", str(Path(tmp) / "uncalibrated.onnx"), "--half"]) != 0:
                return fail("ONNX export failed; nothing shipped", 1)
            detector = facespot.load(str(Path(tmp) / "uncalibrated.onnx"), score_threshold=0.02)
        else:
            detector = Detector.from_model(model, "onnxruntime", score_threshold=0.02)
        cal = calibrate(detector, faces, negatives, blanks, args.precision, args.max_fp, progress=_progress("calibration", n))
        print(f"calibration: {cal.summary()}", flush=True)
        model.shift_face_logit(cal.logit_shift)  # a float32 bias: kept exact in both half files
        staged = save_weights(model, Path(tmp) / f"{stem}.safetensors", {
            "calibrated_threshold": f"{cal.threshold:.8f}", "calibration": cal.summary(), "source": Path(args.weights).name,
            "calibration_budgets": f"precision >= {args.precision} on {len(faces)} held-out images; <= {args.max_fp} false "
                                   f"faces per face-free training photo ({len(negatives)}); none on {len(blanks)} blank frames",
            **({"score_groups": offsets.summary()} if offsets is not None else {}),
            **({"score_groups_recall": recall.summary()} if recall is not None else {}),
        }, half=args.half)  # fmt: skip
        staged_onnx = Path(tmp) / f"{stem}.onnx"
        if cli(["export", str(staged), "--onnx", str(staged_onnx)] + (["--half"] if args.half else [])) != 0:
            return fail("ONNX export failed; nothing shipped", 1)
        shipped = facespot.load(str(staged_onnx), score_threshold=0.02)
        check = check_budgets(shipped, faces, negatives, blanks, args.precision, args.max_fp,
                              progress=_progress("budget check of the exported model", n))  # fmt: skip
        print(f"exported model at 0.5: {check.at_threshold.summary()}; {check.fp_per_image:.4f} false faces per "
              f"face-free photo, {check.blank_faces} on blank frames", flush=True)  # fmt: skip
        if not check.ok:
            return fail("the exported model breaks its budgets (" + "; ".join(check.problems) + "); nothing shipped", 1)
        weights = folder / f"{stem}-{sha256_file(staged)[:8]}.safetensors"
        onnx = folder / f"{stem}-{sha256_file(staged_onnx)[:8]}.onnx"
        os.replace(staged, weights)  # new names: the manifest still lists the old files until it switches
        os.replace(staged_onnx, onnx)
    add_packaged(weights, args.name, folder, default=args.default, description=args.description, onnx=onnx)
    print(f"registered {args.name!r}{' as the default' if args.default else ''}: {weights.name}, {onnx.name}")
    return 0


if __name__ == "__main__":
    from facespot.errors import Terminated, sigterm_as_interrupt

    try:
        with sigterm_as_interrupt():  # a kill unwinds as Ctrl-C does: the staging folder in weights/ is removed
            sys.exit(main())
    except KeyboardInterrupt as stop:
        print("ship_model: stopped", file=sys.stderr)
        sys.exit(143 if isinstance(stop, Terminated) else 130)
