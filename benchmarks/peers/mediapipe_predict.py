"""MediaPipe BlazeFace predictions in facespot's evaluation formats (peer accuracy baseline).

Runs in the peers venv (see README.md here; mediapipe==0.10.14), imports nothing of
facespot's, and writes what facespot's own ``facespot detect`` writes, so the same
evaluators score both side by side:

* ``--wider-out DIR``: WIDER FACE prediction files ``DIR/<event>/<name>.txt`` (image name
  line, count line, ``x y w h score`` lines), the event being the image's parent folder
  name -- the layout ``facespot eval wider --pred DIR`` reads;
* ``--json FILE``: one JSON line per image, ``{"source", "width", "height", "faces": [{"box":
  [x1, y1, x2, y2], "score", "keypoints": [[x, y] * 6]}]}`` in pixels, the format of
  ``facespot detect --json`` that ``facespot eval dataset --pred`` reads. ``source`` is the
  image path relative to ``--images`` / ``--root``, as facespot names folder images.

Keypoints stay in MediaPipe's own order: right eye, left eye, nose tip, mouth centre, right
ear tragion, left ear tragion (the person's right/left). ``facespot eval dataset
--keypoint-map mediapipe`` maps them onto a data set's landmarks.

Boxes are clipped to the image, as facespot's detector clips its own, so IoU is measured
the same way for both. ``--min-score`` defaults to 0.05: AP needs the low-score tail that
MediaPipe's usual 0.5 would cut. In mediapipe 0.10.14, ``FaceDetection(min_detection_confidence=
0.05)`` does not reach the graph's decoder, whose own threshold stays at 0.5 (short) / 0.6 (full)
(google-ai-edge/mediapipe issue #3896; checked here: no score below those floors). So the same
solution graph is built through ``SolutionBase`` with the threshold also set on the
``TensorsToDetectionsCalculator`` node (:func:`make_face_detection`); ``--stock`` uses the plain
``FaceDetection`` call instead. One thread: the process pins itself to ``--threads`` CPUs
before MediaPipe starts (it has no thread option).

Examples (from the repository root)::

    /tmp/peers-venv/bin/python benchmarks/peers/mediapipe_predict.py --model short \\
        --images ../shared/data/wider-val-dev/images --wider-out /tmp/mp_eval/wider_short
    /tmp/peers-venv/bin/python benchmarks/peers/mediapipe_predict.py --model full \\
        --list configs/splits/caltech_holdout.txt --root ../shared/data/caltech-webfaces/images \\
        --json /tmp/mp_eval/caltech_full.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from peers_latency import pin_cpus  # same folder: run as a script, it is on sys.path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MODELS = {"short": 0, "full": 1}
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion")


def _fail(msg: str) -> None:
    print(f"mediapipe_predict: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def walk_images(folder: Path) -> list[tuple[Path, str]]:
    """Images under ``folder`` (recursive, sorted) as ``(path, name relative to folder)``."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
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


def list_images(list_file: Path, root: Path) -> list[tuple[Path, str]]:
    """Images named in a list file (one per line, ``#`` comments; extension optional)."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        _fail(f"{list_file}: cannot read ({exc.strerror})")
    out = []
    for lineno, raw in enumerate(lines, 1):
        item = raw.split("#", 1)[0].strip()
        if not item:
            continue
        p = _resolve(root, item)
        if p is None:
            _fail(f"{list_file}:{lineno}: image {item!r} not found under {root}")
        try:
            name = p.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            name = p.name
        out.append((p, name))
    if not out:
        _fail(f"{list_file}: the list names no image")
    return out


def make_face_detection(model: str, min_score: float, stock: bool = False):
    """MediaPipe's face detection solution graph whose decoder keeps scores >= ``min_score``.

    Same graph and post-processing as ``mp.solutions.face_detection.FaceDetection``; the only
    change is that the threshold is also passed to the subgraph's score decoder (see the
    module docstring). Falls back to the stock call, with a warning, if this mediapipe
    version names the node differently.
    """
    import mediapipe as mp
    from mediapipe.modules.face_detection import face_detection_pb2
    from mediapipe.python.solution_base import SolutionBase
    from mediapipe.python.solutions import face_detection as fd

    selection = MODELS[model]
    if not stock:
        path, prefix = (
            (fd._FULL_RANGE_GRAPH_FILE_PATH, "facedetectionfullrange")
            if selection == 1
            else (fd._SHORT_RANGE_GRAPH_FILE_PATH, "facedetectionshortrange")
        )
        class _FaceDetectionGraph(SolutionBase):
            def __init__(self) -> None:
                super().__init__(
                    binary_graph_path=path,
                    graph_options=self.create_graph_options(face_detection_pb2.FaceDetectionOptions(), {"min_score_thresh": min_score}),
                    calculator_params={f"{prefix}__facedetection__TensorsToDetectionsCalculator.min_score_thresh": min_score},
                    outputs=["detections"],
                )  # fmt: skip

            def process(self, image: np.ndarray):
                return super().process(input_data={"image": image})

        try:
            return _FaceDetectionGraph()
        except Exception as exc:  # node names differ in other mediapipe versions
            print(f"mediapipe_predict: warning: cannot set the decoder threshold ({exc}); using the stock "
                  "FaceDetection, whose scores stop at 0.5 / 0.6", file=sys.stderr)  # fmt: skip
    return mp.solutions.face_detection.FaceDetection(model_selection=selection, min_detection_confidence=min_score)


def detections(result, width: int, height: int) -> list[dict]:
    """MediaPipe result -> facespot face dicts (pixel ``xyxy`` box clipped to the image)."""
    faces = []
    for det in result.detections or []:
        loc = det.location_data
        rb = loc.relative_bounding_box
        x1, y1 = rb.xmin * width, rb.ymin * height
        x2, y2 = x1 + rb.width * width, y1 + rb.height * height
        x1, x2 = float(np.clip(x1, 0, width)), float(np.clip(x2, 0, width))
        y1, y2 = float(np.clip(y1, 0, height)), float(np.clip(y2, 0, height))
        if x2 <= x1 or y2 <= y1:
            continue
        kps = [[round(k.x * width, 2), round(k.y * height, 2)] for k in loc.relative_keypoints]
        faces.append({
            "box": [round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)],
            "score": round(float(det.score[0]), 5),
            "keypoints": kps or None,
        })  # fmt: skip
    faces.sort(key=lambda f: -f["score"])
    return faces


def write_wider(folder: Path, name: str, faces: list[dict]) -> None:
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", metavar="DIR", help="every image under this folder (recursive)")
    src.add_argument("--list", metavar="FILE", help="images named in this file, one per line (resolved under --root)")
    ap.add_argument("--root", metavar="DIR", help="folder the --list names are relative to (default: the list's folder)")
    ap.add_argument("--model", choices=tuple(MODELS), default="short", help="short range (128x128) or full range")
    ap.add_argument("--min-score", type=float, default=0.05, help="MediaPipe min_detection_confidence (default 0.05)")
    ap.add_argument("--wider-out", metavar="DIR", help="write WIDER prediction files DIR/<event>/<name>.txt")
    ap.add_argument("--json", metavar="FILE", help="write facespot 'detect --json' lines")
    ap.add_argument("--stock", action="store_true", help="plain FaceDetection(min_detection_confidence=...) (its floor: 0.5 / 0.6)")
    ap.add_argument("--threads", type=int, default=1, help="CPUs to pin the process to (default 1)")
    args = ap.parse_args(argv)
    if not args.wider_out and not args.json:
        _fail("nothing to write: give --wider-out DIR and/or --json FILE")
    pin_cpus(args.threads)

    if args.images:
        folder = Path(args.images)
        if not folder.is_dir():
            _fail(f"{folder}: not a folder")
        images = walk_images(folder)
        if not images:
            _fail(f"{folder}: no images found")
    else:
        list_file = Path(args.list)
        images = list_images(list_file, Path(args.root) if args.root else list_file.parent)
    if args.wider_out:
        keys = [(Path(n).parent.name or "images", Path(n).stem) for _, n in images]
        if len(set(keys)) != len(keys):
            _fail("two images map to the same WIDER file <event>/<name>.txt (same folder name and stem)")

    import cv2
    import mediapipe as mp

    cv2.setNumThreads(args.threads)
    fd = make_face_detection(args.model, args.min_score, args.stock)
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
                print(f"mediapipe_predict: warning: {msg}", file=sys.stderr)
                if json_file is not None:
                    json_file.write(json.dumps({"source": name, "error": msg}) + "\n")
                continue
            h, w = bgr.shape[:2]
            faces = detections(fd.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), w, h)
            n_faces += len(faces)
            if json_file is not None:
                json_file.write(json.dumps({"source": name, "width": w, "height": h, "faces": faces}) + "\n")
            if args.wider_out:
                write_wider(Path(args.wider_out), name, faces)
            if i % 100 == 0 or i == len(images):
                rate = i / max(time.perf_counter() - t0, 1e-9)
                print(f"[{args.model}] {i}/{len(images)} images, {n_faces} detections, {rate:.1f} img/s", file=sys.stderr, flush=True)
    finally:
        fd.close()
        if json_file is not None:
            json_file.close()
    print(f"mediapipe {mp.__version__} {args.model}: {len(images) - n_failed} image(s), {n_faces} detection(s) "
          f"at score >= {args.min_score}, {n_failed} unreadable")  # fmt: skip
    return 0 if n_failed < len(images) else 1


if __name__ == "__main__":
    sys.exit(main())
