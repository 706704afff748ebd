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
            "Anonymise faces: every detected face (the ellipse in its box grown by --margin, or the whole box "
            "with --shape box) is Gaussian-blurred or pixelated; pixels outside are untouched. In videos faces "
            "are tracked across frames: a face stays blurred through missed detections and from a few frames "
            "before it is first found. Videos are written as H.264 with the input's frame size, rate and audio."
        ),
    )
    p.add_argument("source", help="image, folder, video file or camera index")
    p.add_argument("--out", required=True, metavar="OUT", help="output image file/folder, or video file/folder")
    p.add_argument("--method", choices=("gaussian", "pixelate"), default="gaussian", help="default: gaussian")
    p.add_argument("--margin", type=float,
                   help="grow each box by this fraction per side (default: the margin the model's blur operating point "
                        "was measured with; 0.2 for a model without one)")  # fmt: skip
    p.add_argument("--shape", choices=("ellipse", "box"), default="ellipse",
                   help="cover the ellipse inside the grown box (as much of the face, less of what is around it) "
                        "or the whole box (default: ellipse)")  # fmt: skip
    # blur's own operating point, measured per packaged model: a missed face is worse than a blurred patch
    add_model_arguments(p, threshold=None, threshold_help=(
        "minimum score of a face to blur, whatever its size (default: the model's measured blur operating point, "
        "lower for small faces; 0.3, 0.2 under 48 px, 0.15 under 24 px for a model without one)"))  # fmt: skip
    v = p.add_argument_group("video")
    v.add_argument("--track", action=argparse.BooleanOptionalAction, default=True,
                   help="follow faces across frames, holding each through missed detections (default: on)")  # fmt: skip
    v.add_argument("--detect-every", type=int, metavar="K",
                   help="run the detector on every K-th frame only; tracks cover the frames between (default: 1)")  # fmt: skip
    v.add_argument("--keep-threshold", type=float, metavar="S",
                   help="lowest score that continues a face already tracked (default: measured with the threshold)")  # fmt: skip
    v.add_argument("--hold", type=int, metavar="N", help="frames a lost face stays blurred where it is predicted (default: 3)")
    v.add_argument("--lookback", type=int, metavar="N",
                   help="frames before a face's first detection also blurred (output delayed by a few more; default: 2)")  # fmt: skip
    from facespot.distributed.options import add_engine_arguments

    add_engine_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facespot.cli.detect import detection_settings
    from facespot.distributed.options import check_local, engine_options
    from facespot.runtime.pipeline import check_run_outputs, run_source
    from facespot.runtime.settings import BlurSettings

    blur = BlurSettings(
        method=args.method, margin=args.margin, shape=args.shape, track=args.track, keep=args.keep_threshold, hold=args.hold,
        lookback=args.lookback, every=args.detect_every,
    )  # fmt: skip
    settings = detection_settings(args, blur)
    if args.engine == "ray":  # the same outputs from a Ray Data actor pool (facespot[ray])
        from facespot.distributed.run import run as run_on_ray

        return run_on_ray("blur", settings, engine_options(args), out=args.out)
    check_local(args)
    source = settings.open_source()
    try:
        check_run_outputs(source, Path(args.out), "--out")  # before the model loads: never over an input
        handle, note = settings.blur_handle()
        detector = settings.build_detector(handle.settings.low)
        report = run_source(source, detector, handle, Path(args.out), args.progress, desc="blur")
    finally:
        source.close()
    if source.kind in ("video", "camera") or source.videos:
        report.notes.insert(0, note)
    print(report.summary("blur"))
    return 0
