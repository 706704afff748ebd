"""``facespot blur``: anonymise faces in images and videos (argument parsing only; the work
is in :mod:`facespot.runtime.pipeline` and :mod:`facespot.runtime.anonymize`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from facespot.cli.detect import add_model_arguments

    p = sub.add_parser(
        "blur",
        help="blur or pixelate faces in images and videos",
        description=(
            "Anonymise faces: every detected face (grown by --margin) is Gaussian-blurred or pixelated; pixels "
            "outside the faces are untouched. Videos keep their frame size and rate; audio is NOT copied "
            "(OpenCV writes video only; mux it back with ffmpeg if needed)."
        ),
    )
    p.add_argument("source", help="image, folder, video file or camera index")
    p.add_argument("--out", required=True, metavar="OUT", help="output image file/folder, or video file/folder")
    p.add_argument("--method", choices=("gaussian", "pixelate"), default="gaussian", help="default: gaussian")
    p.add_argument("--margin", type=float, default=0.2, help="grow each box by this fraction per side (default: 0.2)")
    # a lower default threshold than detect: a missed face is worse than a blurred patch
    add_model_arguments(p, threshold=0.4)
    from facespot.distributed.options import add_engine_arguments

    add_engine_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facespot.cli.detect import build_detector, open_input
    from facespot.distributed.options import check_local
    from facespot.errors import FacespotError
    from facespot.runtime.pipeline import blur_handler, check_run_outputs, run_source

    if args.engine == "ray":  # the same outputs from a Ray Data actor pool (facespot[ray])
        from facespot.distributed.run import run as run_on_ray

        return run_on_ray(args, "blur")
    check_local(args)
    if not 0.0 <= args.margin <= 2.0:
        raise FacespotError(f"--margin must be between 0 and 2, got {args.margin}")
    source = open_input(args)
    try:
        check_run_outputs(source, Path(args.out), "--out")  # before the model loads: never over an input
        detector = build_detector(args, args.threshold)
        report = run_source(source, detector, blur_handler(args.method, args.margin), Path(args.out), args.progress, desc="blur")
    finally:
        source.close()
    print(report.summary("blur"))
    return 0
