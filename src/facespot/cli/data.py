"""``facespot data ...``: look at data sets (``stats``, ``preview``) and ``pack`` a recipe's
training images (argument parsing only; logic in facespot.data and facespot.train.pack)."""

from __future__ import annotations

import argparse
from pathlib import Path

from facespot.data.formats import ACCEPTED_LAYOUTS, FORMATS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="inspect face data sets")
    data_sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True

    stats = data_sub.add_parser(
        "stats",
        help="count images and faces, histogram face sizes, list problems",
        description="Count images and faces, histogram face sizes and list problems of a data set.",
        epilog=ACCEPTED_LAYOUTS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    stats.add_argument("dataset", metavar="DATASET", help="data folder or annotation file")
    stats.add_argument("--format", default="auto", choices=("auto",) + FORMATS, help="annotation format (default: detect)")
    stats.add_argument("--split", choices=("train", "val"), help="WIDER FACE split when the folder holds both")
    stats.add_argument("--no-check-images", action="store_true", help="examine annotations only (no file or size checks)")
    stats.add_argument("--max-problems", type=int, default=10, metavar="N", help="problems listed per kind (default 10)")
    stats.set_defaults(func=_stats)

    register_preview(data_sub)
    register_pack(data_sub)


def register_pack(data_sub: argparse._SubParsersAction) -> None:
    p = data_sub.add_parser(
        "pack",
        help="pack a recipe's training images into one file to train from (fast on a CPU, small to move to a GPU)",
        description=(
            "Write the training images of RECIPE (its data.train sources, hold-outs excluded as the recipe says)\n"
            "into OUT/images.bin + OUT/index.json, long side at most --max-side. 'raw' stores decoded pixels\n"
            "(no JPEG decoding while training); 'jpeg' / 'webp' re-encode them (small enough to carry to a\n"
            "lent GPU). Train from it with: facespot train RECIPE --set data.pack=OUT"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("recipe", metavar="RECIPE", help="training recipe (.yaml)")
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument("--max-side", type=int, default=1024, help="long side of packed images (default 1024; never upscaled)")
    p.add_argument("--encode", choices=("raw", "jpeg", "webp"), default="raw", help="pixel storage (default raw)")
    p.add_argument("--quality", type=int, default=90, help="jpeg / webp quality 1-100 (default 90)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (default: on a terminal)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe value as facespot train does, e.g. to pack one source only: "
        "--set 'data.train=[{format: wider, path: ../data/wider-train, options: {split: val}}]' (repeatable)",
    )
    p.set_defaults(func=_pack)


def _pack(args: argparse.Namespace) -> int:
    """Options and OUT are checked before any source is read (a typo costs no loading time);
    the pack is written into a temporary folder inside OUT and moved into place at the end, so
    a full disk leaves OUT as it was (no half-written images.bin beside an older index)."""
    import sys

    from facespot.errors import FacespotError
    from facespot.files import Output, check_outputs
    from facespot.train.config import load_config
    from facespot.train.pack import DATA, INDEX
    from facespot.train.sources import load_weighted_sources

    if not 1 <= args.quality <= 100:
        raise FacespotError(f"--quality must be 1-100, got {args.quality}")
    if args.max_side < 16:
        raise FacespotError(f"--max-side must be at least 16, got {args.max_side}")
    cfg = load_config(args.recipe, args.overrides)
    out = Path(args.out)
    sources = list(cfg.data.train)
    inputs = [args.recipe] + [s.path for s in sources if s.path] + [p for s in sources for v in (s.include, s.exclude, s.labels) for p in (v if isinstance(v, list) else [v]) if p]
    check_outputs([Output("OUT", out, "dir"), Output(f"OUT ({DATA})", out / DATA), Output(f"OUT ({INDEX})", out / INDEX)], inputs)
    records, repeats = load_weighted_sources(cfg.data.train, cfg.source)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    _write_pack_safely(records, out, args, repeats, progress)
    size = sum((out / f).stat().st_size for f in (DATA, INDEX))
    print(f"packed {len(records)} images into {out} ({size / 2**20:.1f} MiB, {args.encode}, long side <= {args.max_side})")
    return 0


def _write_pack_safely(records, out: Path, args: argparse.Namespace, repeats, progress: bool) -> None:
    """:func:`facespot.train.pack.write_pack` into ``OUT/.pack-*``, then moved over OUT's files
    (index removed first and replaced last: a reader never pairs a new images.bin with an old
    index). An ``OSError`` (disk full, read-only) is one :class:`OutputError` line; when it comes
    while writing, OUT keeps its old pack (or is removed again if this run created it)."""
    import os
    import shutil
    import tempfile

    from facespot.errors import OutputError
    from facespot.files import ensure_folder
    from facespot.train.pack import DATA, INDEX, write_pack

    created = not out.exists()
    ensure_folder(out, "OUT")
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".pack-", dir=out))
        write_pack(records, tmp, args.max_side, args.encode, args.quality, repeats, progress)
        if (out / INDEX).exists():
            os.unlink(out / INDEX)
        os.replace(tmp / DATA, out / DATA)
        os.replace(tmp / INDEX, out / INDEX)
    except OSError as exc:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise OutputError(f"OUT {out}: cannot write the pack ({exc.strerror or exc})") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _stats(args: argparse.Namespace) -> int:
    from facespot.data.formats import detect_format, open_records
    from facespot.data.stats import compute_stats, format_stats

    fmt = detect_format(args.dataset) if args.format == "auto" else args.format
    options = {}
    if fmt == "wider" and Path(args.dataset).is_dir():
        # stats shows the annotation as it is, and reports missing images itself
        options = {"split": args.split, "missing": "keep", "drop_invalid": False}
    records = open_records(args.dataset, format=fmt, **options)
    stats = compute_stats(records, check_images=not args.no_check_images)
    print(format_stats(stats, title=f"{args.dataset} ({fmt})", max_problems=args.max_problems))
    return 0


# ------------------------------------------------------------------------------ preview

# Extensions OpenCV always has a writer for; checked up front so a typo in --out is a
# one-line error before any image is decoded, not an OpenCV exception at the end.
_SHEET_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def register_preview(data_sub: argparse._SubParsersAction) -> None:
    p = data_sub.add_parser(
        "preview",
        help="write a contact sheet of augmented training samples with their boxes drawn",
        description=(
            "Draw N samples through the training augmentation (a recipe's `augment` list, or the\n"
            "default pipeline) and write them as one grid image, boxes in green and landmarks\n"
            "coloured by index. One look catches boxes that drift after a flip or rotation\n"
            "before a training run is spent on them. The same --seed gives the same sheet."
        ),
        epilog=ACCEPTED_LAYOUTS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", metavar="DATASET", nargs="?", help="data folder or annotation file (default: the recipe's data.train sources)")
    p.add_argument("--format", default="auto", metavar="FMT", help=f"annotation format: auto, {', '.join(FORMATS)} (default: detect)")
    p.add_argument("--split", choices=("train", "val"), help="WIDER FACE split when the folder holds both")
    p.add_argument("--recipe", metavar="YAML", help="training recipe whose augment list and input size to use")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a recipe value (repeatable)")
    p.add_argument("--input", metavar="HxW", help="training input size the pipeline resizes to, e.g. 640 or 480x640 "
                   "(default: the recipe's data.input_size or its model's training size, else 640)")
    p.add_argument("--n", type=int, default=16, metavar="N", help="samples on the sheet (default 16)")
    p.add_argument("--size", type=int, default=256, metavar="PX", help="side of each square tile in pixels (default 256)")
    p.add_argument("--columns", type=int, default=4, metavar="C", help="tiles per row (default 4, at most N)")
    p.add_argument("--seed", type=int, default=0, help="picks the samples and drives the augmentation (default 0)")
    p.add_argument("--out", required=True, metavar="IMAGE", help=f"sheet to write ({', '.join(_SHEET_EXTENSIONS)})")
    p.set_defaults(func=_preview)


def parse_input_size(text: str) -> tuple[int, int]:
    """``"640"`` -> (640, 640); ``"480x640"`` -> (480, 640) as (height, width)."""
    from facespot.errors import FacespotError

    parts = text.lower().split("x")
    try:
        nums = [int(v) for v in parts]
    except ValueError:
        nums = []
    if len(nums) not in (1, 2) or min(nums) < 8:
        raise FacespotError(f"--input {text!r}: expected a size like 640 or HEIGHTxWIDTH like 480x640 (each >= 8)")
    return (nums[0], nums[-1])


def _preview(args: argparse.Namespace) -> int:
    from facespot.data.formats import open_records
    from facespot.data.preview import write_preview
    from facespot.errors import FacespotError

    out = Path(args.out)
    if out.suffix.lower() not in _SHEET_EXTENSIONS:
        raise FacespotError(f"--out {out}: expected an image file name ending in {', '.join(_SHEET_EXTENSIONS)}")
    if args.format != "auto" and args.format not in FORMATS:
        raise FacespotError(f"--format {args.format!r}: unknown data format; expected auto or one of {', '.join(FORMATS)}")
    if args.n < 1 or args.columns < 1:
        raise FacespotError("--n and --columns must be at least 1")
    if args.size < 32:
        raise FacespotError(f"--size {args.size}: tiles must be at least 32 pixels")
    if args.overrides and not args.recipe:
        raise FacespotError("--set needs --recipe")

    cfg = None
    if args.recipe:
        from facespot.train.config import load_config

        cfg = load_config(args.recipe, args.overrides)

    if args.dataset is not None:
        options = {"split": args.split} if args.split else {}
        records = open_records(args.dataset, format=args.format, **options)
        what = args.dataset
    elif cfg is not None:
        from facespot.train.sources import load_sources

        records = load_sources(cfg.data.train, cfg.source)
        what = f"{args.recipe} (data.train)"
    else:
        raise FacespotError("give a DATASET, or a --recipe whose data.train sources to preview")
    if not records:
        raise FacespotError(f"{what}: the data set holds no images")

    size = _preview_input_size(args, cfg)
    steps = cfg.augment if cfg is not None else None
    where = f"{cfg.source}: augment" if cfg is not None else "preview augment"
    from facespot.data.augment import build_augment

    pipe = build_augment(steps, size, where=where)
    columns = min(args.columns, args.n)
    path = write_preview(records, out, pipe, size, count=args.n, columns=columns, tile=args.size, seed=args.seed)
    print(f"wrote {path}: {args.n} sample(s) drawn from {len(records)} image(s) of {what}, input {size[0]}x{size[1]} (HxW)")
    return 0


def _preview_input_size(args: argparse.Namespace, cfg) -> tuple[int, int]:
    """--input, else what training would use (the recipe's size, or its model's), else 640."""
    if args.input:
        return parse_input_size(args.input)
    if cfg is None:
        return (640, 640)
    if cfg.data.input_size is not None:
        return (int(cfg.data.input_size[0]), int(cfg.data.input_size[1]))
    from facespot.models import build
    from facespot.train.loop import resolve_input_size

    # building the model is the only way to learn sizes set from options (grid, yolo)
    return resolve_input_size(cfg, build(cfg.model.name, **cfg.model.options))
