"""``facespot eval ...``: score saved predictions (argument parsing only; logic in facespot.eval).

``facespot eval wider --pred DIR --gt DIR`` runs the official WIDER FACE val protocol on a
prediction folder (``<event>/<name>.txt``); ``facespot eval fddb --pred FILE --folds DIR
--images DIR`` computes the FDDB discrete ROC of one detection file.
``facespot eval dataset DATA --format F (--model M | --pred FILE.jsonl)`` scores a model or
``facespot detect --json`` lines on any annotated data set: AP@0.5 and landmark NME.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from facespot.errors import FacespotError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="evaluate saved predictions (WIDER FACE AP, FDDB ROC)")
    eval_sub = parser.add_subparsers(dest="eval_command", metavar="BENCHMARK")
    eval_sub.required = True

    w = eval_sub.add_parser(
        "wider",
        help="official WIDER FACE val protocol: AP for easy / medium / hard",
        description=(
            "Official WIDER FACE val protocol (evaluation.m): AP for easy, medium and hard. "
            "Only the images the prediction folder covers (or --images lists) are evaluated; "
            "the output says when that is a subset of the 3,226 val images."
        ),
    )
    w.add_argument("--pred", required=True, metavar="DIR", help="prediction folder: <event>/<name>.txt files")
    w.add_argument("--gt", required=True, metavar="DIR", help="folder with wider_face_val.mat and wider_{easy,medium,hard}_val.mat")
    w.add_argument("--images", metavar="LIST", help="evaluate exactly these images (one 'event/name' per line); "
                   "listed images without a prediction file count as no detections")
    w.add_argument("--allow-unknown", action="store_true", help="skip (with a warning) prediction files for images not in the ground truth, instead of failing")
    w.add_argument("--plot", metavar="PNG", help="write the PR curves here")
    w.add_argument("--json", metavar="FILE", help="write APs, counts and PR curves here")
    w.add_argument("--label", default="detector", help="method name for the plot legend")
    w.set_defaults(func=_wider)

    f = eval_sub.add_parser(
        "fddb",
        help="FDDB discrete ROC: TPR at N false positives",
        description="FDDB discrete-score ROC of one detection file (blocks of: image name, count, 'x y w h score' lines).",
    )
    f.add_argument("--pred", required=True, metavar="FILE", help="FDDB detection file")
    f.add_argument("--folds", required=True, metavar="DIR", help="FDDB-folds folder (FDDB-fold-XX-ellipseList.txt)")
    f.add_argument("--images", required=True, metavar="DIR", help="FDDB image root (originalPics)")
    f.add_argument("--fp", type=int, nargs="+", default=[100, 500, 1000, 2000], metavar="N", help="report TPR at these false-positive counts")
    f.add_argument("--plot", metavar="PNG", help="write the ROC curve here")
    f.add_argument("--json", metavar="FILE", help="write the ROC points here")
    f.add_argument("--label", default="detector", help="method name for the plot legend")
    f.set_defaults(func=_fddb)

    d = eval_sub.add_parser(
        "dataset",
        help="AP@0.5 (and landmark NME) of a model or a prediction file on any annotated data set",
        description=(
            "Score a detector on an annotated data set (any format facespot reads): AP at --iou (VOC all-point, "
            "difficult/invalid faces ignored) and, when both the data and the detector have landmarks, the "
            "normalised mean error (distance / inter-ocular distance) of faces matched at IoU >= --iou. "
            "Either run a model (--model, at --threshold 0.02) or read JSON lines written by "
            "`facespot detect --json` (run it with --threshold 0.02 so AP sees the low-score tail)."
        ),
    )
    d.add_argument("data", metavar="DATA", help="data folder or annotation file")
    d.add_argument("--format", default="auto", help="data format: auto, wider, voc, yolo, coco, caltech, fddb (default: auto)")
    d.add_argument("--include", metavar="LIST", help="evaluate only the images named here (one per line, '#' comments)")
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="M", help="what `facespot detect --model` takes: .safetensors / .onnx file or packaged name")
    src.add_argument("--pred", metavar="FILE.jsonl", help="predictions as written by `facespot detect --json`")
    d.add_argument("--backend", choices=("onnxruntime", "torch"), default="onnxruntime", help="with --model (default: onnxruntime)")
    d.add_argument("--threads", type=int, help="with --model: CPU threads")
    d.add_argument("--threshold", type=float, default=0.02, help="with --model: lowest detection score kept (default: 0.02)")
    d.add_argument("--iou", type=float, default=0.5, help="IoU for a true positive and for landmark matching (default: 0.5)")
    d.add_argument("--keypoint-map", default="identity", metavar="MAP",
                   help="predicted keypoint index for each data landmark: 'identity' (facespot models; a 5-point model on "
                        "4-point data: 5point), 'mediapipe', '5point' (eyes, nose, mouth centre = mean of the corners), or "
                        "indices such as 0,1,2,3+4 (a+b: mean of two points) (default: identity)")  # fmt: skip
    d.add_argument("--landmark-threshold", type=float, default=0.5,
                   help="only detections scoring at least this are matched for NME (default: 0.5)")  # fmt: skip
    d.add_argument("--missing", choices=("error", "skip"), default="error",
                   help="with --model, annotated images missing on disk: stop before the model loads (error, default) "
                        "or leave them out with a warning (skip)")  # fmt: skip
    d.add_argument("--label", help="row label (default: the data folder and the model / prediction file names)")
    d.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (default: when stderr is a terminal)")
    d.add_argument("--json", metavar="OUT", help="write the result here")
    d.set_defaults(func=_dataset)


def _write_json(path: str, payload: dict) -> None:
    from facespot.files import write_atomically

    text = json.dumps(payload, indent=1) + "\n"
    write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _check_outputs(args: argparse.Namespace, inputs: list) -> None:
    """--plot / --json: checked before any reading -- never over an input, writable, a plot format."""
    from facespot.files import Output, check_outputs

    outputs = []
    if getattr(args, "plot", None):
        from facespot.eval.plots import check_plot_path

        check_plot_path(args.plot)
        outputs.append(Output("--plot", Path(args.plot)))
    if args.json:
        outputs.append(Output("--json", Path(args.json)))
    check_outputs(outputs, inputs)


def _warn(message: str) -> None:
    print(f"facespot: warning: {message}", file=sys.stderr)


def _read_records(data: str, fmt: str, **options):
    """The data set's records; readers' warnings (dropped boxes, ...) become one-line warnings."""
    import warnings

    from facespot.data.formats import open_records

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = open_records(data, fmt, **options)
    for w in caught:
        _warn(str(w.message))
    return records


def _wider(args: argparse.Namespace) -> int:
    from facespot.data.predictions import read_image_list, read_wider_predictions
    from facespot.data.wider_mat import read_wider_mat
    from facespot.eval.wider import evaluate_wider, format_wider_result

    _check_outputs(args, [args.pred, args.gt, args.images])
    gt = read_wider_mat(args.gt)
    keys = [g.key for g in gt]
    images = read_image_list(args.images, keys) if args.images else None
    preds = read_wider_predictions(
        args.pred, known=set(keys), allow_unknown=args.allow_unknown, only=set(images) if images else None
    )
    if preds.unknown:
        shown = ", ".join(preds.unknown[:5]) + (" ..." if len(preds.unknown) > 5 else "")
        print(f"facespot: warning: skipped {len(preds.unknown)} prediction file(s) not in the ground truth: {shown}", file=sys.stderr)
    if not preds.boxes and images is None:
        raise FacespotError(f"{args.pred}: no prediction file matches a ground-truth image")
    result = evaluate_wider(gt, preds.boxes, images=images)
    print(format_wider_result(result))
    if args.plot:
        from facespot.eval.plots import plot_wider_pr

        print(f"PR curves: {plot_wider_pr({args.label: result}, args.plot)}")
    if args.json:
        _write_json(args.json, result.to_dict())
        print(f"JSON: {args.json}")
    return 0


def _fddb(args: argparse.Namespace) -> int:
    from facespot.data.fddb import read_folds
    from facespot.data.predictions import read_fddb_detections
    from facespot.eval.fddb import evaluate_fddb, format_fddb_result

    _check_outputs(args, [args.pred, args.folds, args.images])
    records = read_folds(args.folds, args.images)
    detections = read_fddb_detections(args.pred)
    try:
        result = evaluate_fddb(records, detections, fp_points=args.fp)
    except FacespotError as exc:
        raise FacespotError(f"{args.pred}: {exc}") from None
    print(format_fddb_result(result))
    if args.plot:
        from facespot.eval.plots import plot_fddb_roc

        print(f"ROC curve: {plot_fddb_roc({args.label: result}, args.plot, max_fp=max(args.fp))}")
    if args.json:
        _write_json(args.json, result.to_dict())
        print(f"JSON: {args.json}")
    return 0


def _dataset(args: argparse.Namespace) -> int:
    from facespot.data.formats import FORMATS, detect_format
    from facespot.eval.dataset_eval import (
        evaluate_dataset, format_table, parse_keypoint_map, predict_records, read_prediction_jsonl, select_records,
    )  # fmt: skip

    # every option and output is checked before anything is read or a model loads
    if args.format != "auto" and args.format not in FORMATS:
        raise FacespotError(f"unknown data format {args.format!r}; expected auto or one of {', '.join(FORMATS)}")
    if not 0.0 < args.iou <= 1.0:
        raise FacespotError(f"--iou must be in (0, 1], got {args.iou}")
    for name in ("threshold", "landmark_threshold"):
        value = getattr(args, name)
        if not 0.0 <= value <= 1.0:
            raise FacespotError(f"--{name.replace('_', '-')} must be in [0, 1], got {value}")
    if args.threads is not None and args.threads < 1:
        raise FacespotError(f"--threads must be at least 1, got {args.threads}")
    keypoint_map = parse_keypoint_map(None if args.keypoint_map == "identity" else args.keypoint_map)
    model_file = None
    if args.model:
        from facespot.runtime.detector import check_model_argument

        check_model_argument(args.model)
        model_file = args.model if Path(args.model).is_file() else None
    _check_outputs(args, [args.data, args.include, args.pred, model_file])
    fmt = detect_format(Path(args.data)) if args.format == "auto" and Path(args.data).exists() else args.format
    # a WIDER folder keeps records of missing images so that --missing below decides for every format alike
    options = {"missing": "keep"} if fmt == "wider" and Path(args.data).is_dir() else {}
    all_records = _read_records(args.data, fmt, **options)
    records, missing = select_records(all_records, args.include)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        _warn(f"{len(missing)} image(s) of {args.include} are not in {args.data}: {shown}")
    degenerate = [(r.name, int(((r.boxes[:, 2:] - r.boxes[:, :2]) <= 0).any(axis=1).sum())) for r in records]
    degenerate = [(name, n) for name, n in degenerate if n]
    if degenerate:
        total = sum(n for _, n in degenerate)
        _warn(f"{total} true face box(es) have zero or negative width or height (first in {degenerate[0][0]}); "
              "no detection can match them, so they count as misses")  # fmt: skip
    if args.model:
        absent = [r for r in records if not r.image_path.is_file()]
        if absent and args.missing == "error":
            shown = ", ".join(str(r.image_path) for r in absent[:3]) + (" ..." if len(absent) > 3 else "")
            raise FacespotError(
                f"{args.data}: {len(absent)} of {len(records)} annotated image(s) are missing: {shown} "
                "(pass --missing skip to evaluate without them)"
            )
        if absent:
            _warn(f"left out {len(absent)} annotated image(s) missing on disk (--missing skip), first: {absent[0].image_path}")
            gone = {id(r) for r in absent}
            records = [r for r in records if id(r) not in gone]
            if not records:
                raise FacespotError(f"{args.data}: none of the annotated images exists")
    if args.pred:
        read = read_prediction_jsonl(args.pred, all_records)
        predictions = read.predictions
        failed = set(read.failed) & {r.name for r in records}
        if failed:
            _warn(f"{len(failed)} image(s) could not be read by the detector; they count as misses")
        source = Path(args.pred).name
    else:
        from facespot.runtime.detector import load

        detector = load(args.model, backend=args.backend, threads=args.threads, score_threshold=args.threshold)
        predictions = predict_records(detector, records, progress=args.progress)
        source = Path(args.model).name
    label = args.label or f"{Path(args.data).name} / {source}"
    result = evaluate_dataset(records, predictions, label=label, iou_threshold=args.iou,
                              keypoint_map=keypoint_map, landmark_threshold=args.landmark_threshold)  # fmt: skip
    if result.images_without_predictions:
        print(f"facespot: warning: {result.images_without_predictions} of {result.num_images} evaluated image(s) have no "
              "prediction line; they count as images without detections", file=sys.stderr)  # fmt: skip
    if result.min_score is not None and result.min_score >= 0.3:
        print(f"facespot: note: the lowest prediction score is {result.min_score:.2f}; AP is underestimated when "
              "low-score detections are cut (use a threshold such as 0.02)", file=sys.stderr)  # fmt: skip
    print(format_table([result]))
    if result.landmarks is not None:
        lm = result.landmarks
        print(f"landmarks: keypoint map {lm.keypoint_map}, detections scoring >= {lm.score_threshold:g} matched at IoU >= {args.iou:g}")
    if args.json:
        _write_json(args.json, result.to_dict())
        print(f"JSON: {args.json}")
    return 0
