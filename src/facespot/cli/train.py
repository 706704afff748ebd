"""``facespot train``: run a training recipe (argument parsing only; the work is in
:mod:`facespot.train.loop`)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a YAML recipe",
        description=(
            "Train a detector from a YAML recipe (see configs/). Outputs go to OUT: config.yaml, "
            "metrics.jsonl, last.pt (resumable), best.safetensors and final.safetensors (weights for "
            "`facespot eval`). Multi-GPU: launch with torchrun (see the README)."
        ),
    )
    p.add_argument("config", help="training recipe (.yaml)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set optim.lr=0.01 --set data.train.0.path=/data/WIDER (repeatable)",
    )
    p.add_argument("--epochs", type=int, help="number of epochs (same as --set epochs=N)")
    p.add_argument("--batch-size", type=int, help="images per batch (per process under torchrun)")
    p.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint (last.pt) of the same model")
    p.add_argument("--init", metavar="WEIGHTS", help="fine-tune: start from these weights (.safetensors of the same model; "
                   "same as --set init=WEIGHTS), with a fresh optimiser and schedule")
    p.add_argument("--out", metavar="DIR", help="output folder (same as --set out_dir=DIR)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the recipe's, usually auto)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (default: when stderr is a terminal)")
    p.set_defaults(func=run)


TRAIN_OUTPUTS = ("config.yaml", "metrics.jsonl", "last.pt", "best.safetensors", "final.safetensors")
"""What a run writes into its output folder (see :mod:`facespot.train.loop`)."""


def check_train_outputs(cfg, config_path: str, resume: str | None, option: str = "--out") -> None:
    """Before the model is built: the output folder and its files must be writable and never
    replace an input (the recipe, a data set, a name list, a training pack). Resuming from
    ``OUT/last.pt`` overwrites it by design; every other input stays untouched."""
    from pathlib import Path

    from facespot.files import Output, check_outputs, resolved_path

    out = Path(cfg.out_dir)
    sources = list(cfg.data.train) + list(cfg.data.val)
    inputs = [config_path, resume] + [cfg.data.pack, cfg.data.wider_gt_dir, cfg.init]
    inputs += [s.path for s in sources if s.path] + [p for s in sources for v in (s.include, s.exclude, s.labels) for p in (v if isinstance(v, list) else [v]) if p]
    names = [n for n in TRAIN_OUTPUTS if not (resume and n == "last.pt" and resolved_path(out / n) == resolved_path(resume))]
    outputs = [Output(option, out, "dir")] + [Output(f"{option} ({n})", out / n) for n in names]
    if resume and resolved_path(out / "last.pt") == resolved_path(resume):
        inputs.remove(resume)
    check_outputs(outputs, inputs)


def run(args: argparse.Namespace) -> int:
    from facespot.train.config import load_config
    from facespot.train.loop import train

    overrides = list(args.overrides)
    if args.epochs is not None:
        overrides.append(f"epochs={args.epochs}")
    if args.batch_size is not None:
        overrides.append(f"batch_size={args.batch_size}")
    if args.out is not None:
        overrides.append(f"out_dir={args.out}")
    if args.device is not None:
        overrides.append(f"device={args.device}")
    cfg = load_config(args.config, overrides)
    if args.init is not None:
        cfg.init = args.init
    check_train_outputs(cfg, args.config, args.resume, "--out" if args.out is not None else "out_dir")
    result = train(cfg, resume=args.resume, progress=args.progress)
    if result.final_weights is not None:  # rank 0
        last = f"{result.epoch_losses[-1]:.4f}" if result.epoch_losses else "n/a"
        print(f"trained {cfg.model.name} for {result.epochs_done} epoch(s); last epoch loss {last}")
        if result.best_ap is not None:
            print(f"best validation AP {result.best_ap:.4f}: {result.best_weights}")
        print(f"final weights: {result.final_weights}")
        if result.skipped_images:
            print(f"skipped {result.skipped_images} unreadable image(s)")
    return 0
