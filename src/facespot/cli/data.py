"""``facespot data ...``: look at data sets (argument parsing only; logic in facespot.data)."""

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
