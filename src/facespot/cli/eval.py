"""``facespot eval ...``: score saved predictions (argument parsing only; logic in facespot.eval).

``facespot eval wider --pred DIR --gt DIR`` runs the official WIDER FACE val protocol on a
prediction folder (``<event>/<name>.txt``); ``facespot eval fddb --pred FILE --folds DIR
--images DIR`` computes the FDDB discrete ROC of one detection file.
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


def _write_json(path: str, payload: dict) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise FacespotError(f"{path}: cannot write JSON ({exc.strerror})") from None


def _wider(args: argparse.Namespace) -> int:
    from facespot.data.wider_mat import read_wider_mat
    from facespot.eval.predictions import read_image_list, read_wider_predictions
    from facespot.eval.wider import evaluate_wider, format_wider_result

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
    from facespot.eval.fddb import evaluate_fddb, format_fddb_result
    from facespot.eval.predictions import read_fddb_detections

    try:
        from facespot.data.fddb import read_folds
    except ImportError:
        raise FacespotError("FDDB ground truth reader (facespot.data.fddb.read_folds) is not available in this install") from None
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
