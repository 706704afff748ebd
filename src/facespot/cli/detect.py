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


def detection_settings(args: argparse.Namespace, blur=None):
    """The run's :class:`~facespot.runtime.settings.DetectionSettings` from the options of
    :func:`add_model_arguments` (``blur``: blur's own, a :class:`~facespot.runtime.settings.BlurSettings`)."""
    from facespot.runtime.settings import DetectionSettings

    return DetectionSettings(
        source=args.source, model=args.model, untrained=args.untrained, backend=args.backend, threads=args.threads,
        threshold=args.threshold, nms_iou=args.nms_iou, max_faces=args.max_faces, min_size=args.min_size,
        resize=args.resize, max_side=args.max_side, min_side=args.min_side, multiscale=args.multiscale,
        max_pixels=args.max_pixels, max_frames=args.max_frames, progress=args.progress, blur=blur,
    )  # fmt: skip


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
    from facespot.distributed.options import check_local, engine_options
    from facespot.files import Output, ensure_folder
    from facespot.runtime.json_lines import open_json_lines, run_settings
    from facespot.runtime.pipeline import DetectOutputs, check_detect_request, check_run_outputs, run_source

    settings = detection_settings(args)
    if args.engine == "ray":  # the same outputs from a Ray Data actor pool (facespot[ray])
        from facespot.distributed.run import run as run_on_ray

        return run_on_ray("detect", settings, engine_options(args), out=args.save, json_out=args.json,
                          wider_out=args.wider_out, wider_threshold=args.wider_threshold, resume=args.resume)  # fmt: skip
    check_local(args)
    source = settings.open_source()
    try:
        check_detect_request(source, args.wider_out, args.json, args.resume)
        # every output is checked before the model loads: none may replace an input, all writable
        others = [Output("--wider-out", Path(args.wider_out), "dir")] if args.wider_out else []
        if args.json and args.json != "-":
            others.append(Output("--json", Path(args.json)))
        check_run_outputs(source, Path(args.save) if args.save else None, "--save", others)
        threshold = min(args.threshold, args.wider_threshold) if args.wider_out else args.threshold
        detector = settings.build_detector(threshold)
        json_file, done = None, set()
        if args.json == "-":  # JSON lines on stdout, for pipes; the summary goes to stderr
            json_file = sys.stdout
        elif args.json:  # locked for this run, its settings recorded beside it
            json_file, done = open_json_lines(args.json, run_settings(settings, detector), args.resume)
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
