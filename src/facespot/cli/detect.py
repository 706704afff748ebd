"""``facespot detect``: find faces in an image, a folder, a video or a camera (argument
parsing only; the work is in :mod:`facespot.runtime.pipeline`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_model_arguments(p: argparse.ArgumentParser, threshold: float | None = 0.5, threshold_help: str | None = None) -> None:
    """Options shared by ``detect`` and ``blur``: which model, which backend, thresholds."""
    g = p.add_argument_group("model")
    g.add_argument("--model", default="default",
                   help="'default' (packaged weights), a .safetensors / exported .onnx file, or a registry name with --untrained")  # fmt: skip
    g.add_argument("--untrained", action="store_true", help="allow a bare registry name (random weights: timing/tests only)")
    g.add_argument("--backend", choices=("onnxruntime", "torch"), default="onnxruntime", help="inference backend (default: onnxruntime)")
    g.add_argument("--threads", type=int,
                   help="CPU threads (default: physical cores); with --engine ray: threads per actor, each actor "
                        "reserving that many CPUs (default there: 1, or the CPUs shared out among --actors)")  # fmt: skip
    g.add_argument("--threshold", type=float, default=threshold, help=threshold_help or f"minimum face score (default: {threshold})")
    g.add_argument("--nms-iou", type=float, default=0.3, help="NMS IoU threshold (default: 0.3)")
    g.add_argument("--max-faces", type=int, default=750, help="most faces per image (default: 750)")
    g.add_argument("--min-size", type=float, default=0.0, help="ignore faces smaller than this many pixels (default: 0)")
    g.add_argument("--resize", default="auto", help="'auto', 'native' or a long side in pixels (default: auto)")
    g.add_argument("--max-side", type=int, default=2048, help="downscale native-size input above this long side (default: 2048)")
    g.add_argument("--min-side", type=int, default=640, help="with --resize auto, upscale smaller images to this long side (default: 640; 0: never)")
    g.add_argument("--multiscale", action="store_true", help="tiny faces in large images: image pyramid (Tiny Faces) or tiles (others)")
    g.add_argument("--max-pixels", type=int, help="refuse images with more pixels (default: 80 million)")
    g.add_argument("--max-frames", type=int, help="stop a video or camera after this many frames")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (default: when stderr is a terminal)")


class ViewProgress:
    """A second progress bar, for the views (tiles) of one image when it has many: a 12000x12000
    photo with --multiscale is a couple of thousand tiles and a minute or more that the bar
    counting images shows as no progress at all. ``enabled`` as ``--progress``."""

    def __init__(self, enabled: bool | None, min_views: int = 32) -> None:
        self.show = sys.stderr.isatty() if enabled is None else bool(enabled)
        self.min_views = min_views
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if not self.show or total < self.min_views:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="tiles", unit="tile", leave=False, position=1, file=sys.stderr, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.bar.close()
            self.bar = None


def build_detector(args: argparse.Namespace, threshold: float):
    from facespot.errors import FacespotError
    from facespot.images import DEFAULT_MAX_PIXELS
    from facespot.runtime.detector import load

    if args.min_side < 0:
        raise FacespotError(f"--min-side must be 0 (never upscale) or a long side in pixels, got {args.min_side}")
    resize = int(args.resize) if str(args.resize).isdigit() else args.resize
    det = load(
        args.model, backend=args.backend, threads=args.threads, untrained=args.untrained, rgb=True,
        score_threshold=threshold, iou_threshold=args.nms_iou, max_faces=args.max_faces,
        min_face_size=args.min_size, resize=resize, max_side=args.max_side, min_side=args.min_side or None,
        mode="multiscale" if args.multiscale else "single", max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
    )  # fmt: skip
    if not det.trained:
        print(f"facespot: note: {det.model_name} runs with UNTRAINED weights; its faces are random", file=sys.stderr)
    if args.multiscale:
        det.on_views = ViewProgress(args.progress)
    return det


def open_input(args: argparse.Namespace):
    from facespot.errors import FacespotError
    from facespot.images import DEFAULT_MAX_PIXELS
    from facespot.runtime.sources import open_source

    if args.max_pixels is not None and args.max_pixels < 1:  # the first option a run uses
        raise FacespotError(f"--max-pixels must be at least 1, got {args.max_pixels}")
    return open_source(args.source, max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, max_frames=args.max_frames)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "detect",
        help="detect faces in images, folders, videos or a camera",
        description=(
            "Detect faces. SOURCE is an image, a folder (searched recursively; videos in it are processed frame by "
            "frame, files that are neither images nor videos are skipped and listed), a video file, or a camera "
            "index such as 0. Outputs: --save (annotated images or video, "
            "same size and frame rate), --json (one JSON line per image/frame), --wider-out (WIDER FACE "
            "prediction folder <event>/<name>.txt for `facespot eval wider`)."
        ),
    )
    p.add_argument("source", help="image, folder, video file or camera index")
    p.add_argument("--save", metavar="OUT", help="annotated output: image file/folder, or video file/folder")
    p.add_argument("--json", metavar="OUT.jsonl", help="write detections as JSON lines ('-': standard output)")
    p.add_argument("--wider-out", metavar="DIR", help="write WIDER FACE prediction files (images only)")
    p.add_argument("--wider-threshold", type=float, default=0.02,
                   help="score threshold for --wider-out files (default: 0.02; AP needs low-score detections)")  # fmt: skip
    add_model_arguments(p)
    from facespot.distributed.options import add_engine_arguments

    add_engine_arguments(p, resume=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facespot.distributed.options import check_local
    from facespot.errors import FacespotError
    from facespot.files import Output, ensure_folder
    from facespot.runtime.json_lines import open_json_lines, run_settings
    from facespot.runtime.pipeline import DetectOutputs, check_run_outputs, run_source

    if args.engine == "ray":  # the same outputs from a Ray Data actor pool (facespot[ray])
        from facespot.distributed.run import run as run_on_ray

        return run_on_ray(args, "detect")
    check_local(args)
    source = open_input(args)
    try:
        if args.wider_out and source.kind in ("video", "camera"):
            raise FacespotError("--wider-out writes one file per image; it does not apply to videos or cameras")
        if args.resume and (not args.json or args.json == "-" or source.kind in ("video", "camera")):
            raise FacespotError("--resume continues a --json FILE for an image or a folder (not standard output, not a video)")
        # every output is checked before the model loads: none may replace an input, all writable
        others = [Output("--wider-out", Path(args.wider_out), "dir")] if args.wider_out else []
        if args.json and args.json != "-":
            others.append(Output("--json", Path(args.json)))
        check_run_outputs(source, Path(args.save) if args.save else None, "--save", others)
        threshold = min(args.threshold, args.wider_threshold) if args.wider_out else args.threshold
        detector = build_detector(args, threshold)
        json_file, done = None, set()
        if args.json == "-":  # JSON lines on stdout, for pipes; the summary goes to stderr
            json_file = sys.stdout
        elif args.json:  # locked for this run, its settings recorded beside it
            json_file, done = open_json_lines(args.json, run_settings(args, detector), args.resume)
        try:
            if done:  # --resume: only what the earlier run did not finish
                source.files = [p for p in source.files if source.name_of(p) not in done]
                if not source.files:
                    print(f"detect: nothing to do: all {len(done)} image(s) are already in {args.json}")
                    return 0
            if args.wider_out:
                ensure_folder(args.wider_out, "--wider-out")
            outputs = DetectOutputs(
                json_file, Path(args.wider_out) if args.wider_out else None, args.save is not None,
                args.threshold, args.wider_threshold, source.kind,
            )  # fmt: skip
            report = run_source(
                source, detector, outputs, Path(args.save) if args.save else None, args.progress,
                desc="detect", on_failure=outputs.failure, resumed=bool(done),
            )  # fmt: skip
        finally:
            if json_file is not None and json_file is not sys.stdout:
                json_file.close()
    finally:
        source.close()
    if args.json and args.json != "-":
        report.written.append(Path(args.json))
    if args.wider_out:
        report.written.append(Path(args.wider_out))
    print(report.summary("detect"), file=sys.stderr if args.json == "-" else sys.stdout)
    if done:
        print(f"resumed: {len(done)} image(s) already in {args.json} were skipped")
    return 0
