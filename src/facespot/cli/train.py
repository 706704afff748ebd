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
    p.add_argument("--out", metavar="DIR", help="output folder (same as --set out_dir=DIR)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the recipe's, usually auto)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (default: when stderr is a terminal)")
    p.set_defaults(func=run)


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
