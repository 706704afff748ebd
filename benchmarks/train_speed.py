"""Training speed of the real ``facespot train`` loop, and where a step's time goes.

Runs :func:`facespot.train.loop.train` itself (real records, real augmentation, loader
workers, targets, loss, optimiser, EMA) for a few steps, with validation and checkpoints
off, and prints one table:

* **first step**: seconds from calling ``train()`` to the end of the first step (records,
  model, worker start-up, first batch);
* **steady img/s**: images per second after the first ``--warmup`` steps (from the step
  timer), and by wall clock: images / seconds between a run of ``--steps`` steps and one of
  a third as many (start-up cancels out; this also works on code without the timer, for a
  before/after table: ``PYTHONPATH=OLD/src python benchmarks/train_speed.py``);
* **epoch turnover**: (4 epochs x S steps) minus (1 epoch x 4S steps), per epoch boundary:
  what starting a new epoch costs (worker restarts used to dominate it);
* **sections**: share of the steady time spent waiting for data, building targets, in
  forward + backward (with the loss), and in the optimiser step (+ EMA);
* **synthetic step img/s**: the same model, batch, loss and optimiser on one fixed random
  batch in a tight loop -- the ceiling the real loop is measured against.

    python benchmarks/train_speed.py                                  # spotnet_s, CPU
    python benchmarks/train_speed.py --recipe configs/default.yaml --size 512
    python benchmarks/train_speed.py --device cuda --batch-size 64 --steps 60

Run it on a quiet machine; compare numbers from one run only.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

from facespot.train.config import load_config  # noqa: E402
from facespot.train.loop import train  # noqa: E402


def recipe(args, out: str, epochs: int, steps: int):
    over = [
        f"epochs={epochs}", f"max_iters_per_epoch={steps}", "val_every=0", f"checkpoint_every={10**6}",
        f"out_dir={out}", f"device={args.device}", f"workers={args.workers}", f"batch_size={args.batch_size}",
    ] + list(args.set)
    if args.size:
        over.append(f"data.input_size=[{args.size},{args.size}]")
    return load_config(args.recipe, over)


def timed_run(args, epochs: int, steps: int, timer=None) -> float:
    with tempfile.TemporaryDirectory() as out:
        cfg = recipe(args, out, epochs, steps)
        t = time.perf_counter()
        if timer is not None:
            train(cfg, progress=False, timer=timer)
        else:
            train(cfg, progress=False)
        return time.perf_counter() - t


def synthetic(args) -> float:
    """img/s of the bare step on one fixed batch (no loader, no augmentation)."""
    import numpy as np

    from facespot.models import build
    from facespot.train.loader import Batch
    from facespot.train.loop import autocast_for, resolve_input_size
    from facespot.train.objective import compute_targets, loss_from_targets, loss_kind
    from facespot.train.optim import make_optimizer

    cfg = recipe(args, "/tmp/unused", 1, 1)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    model = build(cfg.model.name, **cfg.model.options).to(device)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    size = resolve_input_size(cfg, model)
    anchors = torch.from_numpy(np.asarray(model.anchors(*size), np.float32)).to(device)
    opt = make_optimizer(cfg, model)
    kind = loss_kind(cfg, model)
    rng = np.random.default_rng(0)
    boxes = []
    for _ in range(cfg.batch_size):  # 12 faces of 10-150 px per image
        c = rng.uniform(0.1, 0.9, (12, 2))
        s = rng.uniform(10, 150, (12, 1)) / size[0]
        boxes.append(torch.tensor(np.concatenate([c - s / 2, c + s / 2], 1).clip(0, 1), dtype=torch.float32))
    batch = Batch(torch.randint(0, 255, (cfg.batch_size, size[0], size[1], 3), dtype=torch.uint8), boxes,
                  [None] * cfg.batch_size, ["x"] * cfg.batch_size)
    amp_ctx = autocast_for(cfg, device)  # as the loop: CUDA, or a CPU with native bf16 and amp_cpu
    n = 0
    t = 0.0
    for i in range(args.synthetic_steps + 2):
        if i == 2:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
        x = model.preprocess(batch.images.to(device))  # NHWC in memory, as in the loop
        if cfg.channels_last:
            x = x.contiguous(memory_format=fmt)
        with amp_ctx():
            outs = [o.float() for o in model(x)]
        targets = compute_targets(cfg, model, batch, anchors, size, outs[0])
        parts = loss_from_targets(kind, cfg, model, outs, targets, anchors)
        opt.zero_grad(set_to_none=True)
        parts.total.backward()
        opt.step()
        n += cfg.batch_size if i >= 2 else 0
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default=str(ROOT / "configs" / "spotnet_s.yaml"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--size", type=int, help="square training input side (default: the recipe's)")
    p.add_argument("--steps", type=int, default=24, help="steps of the steady-state run")
    p.add_argument("--warmup", type=int, default=4, help="steps left out of the steady rate")
    p.add_argument("--turnover-steps", type=int, default=2, help="S in 4 x S vs 1 x 4S")
    p.add_argument("--synthetic-steps", type=int, default=8)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra recipe overrides")
    p.add_argument("--skip", default="", help="comma list of parts to skip: steady,wall,turnover,synthetic")
    args = p.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    has_timer = "timer" in inspect.signature(train).parameters  # older code: wall-clock rows only
    rows = []
    if "steady" not in skip and has_timer:
        from facespot.train.timing import SECTIONS, StepTimer

        device = torch.device("cuda" if args.device.startswith("cuda") else "cpu")
        timer = StepTimer(device)
        timed_run(args, 1, args.steps, timer)
        ends = timer.step_ends
        first = ends[0][0] - timer.start
        w = min(args.warmup, len(ends) - 2)
        steady = (ends[-1][1] - ends[w][1]) / (ends[-1][0] - ends[w][0])
        rows.append(("time to first step (s)", f"{first:.2f}"))
        rows.append((f"steady img/s (steps {w + 2}-{len(ends)})", f"{steady:.1f}"))
        total = sum(timer.totals.values())
        for s in SECTIONS:
            rows.append((f"  {s} share (all steps)", f"{100 * timer.totals[s] / max(total, 1e-9):.1f}%"))
    if "wall" not in skip:
        short = max(args.steps // 3, 2)
        t_short = timed_run(args, 1, short)
        t_long = timed_run(args, 1, args.steps)
        rows.append((f"steady img/s by wall clock ({short} vs {args.steps} steps)",
                     f"{(args.steps - short) * args.batch_size / (t_long - t_short):.1f}"))
    if "turnover" not in skip:
        s = args.turnover_steps
        many = timed_run(args, 4, s)
        one = timed_run(args, 1, 4 * s)
        rows.append((f"4 epochs x {s} steps (s)", f"{many:.2f}"))
        rows.append((f"1 epoch x {4 * s} steps (s)", f"{one:.2f}"))
        rows.append(("epoch turnover (s per boundary)", f"{(many - one) / 3:.2f}"))
    if "synthetic" not in skip:
        syn = synthetic(args)
        rows.append(("synthetic step img/s", f"{syn:.1f}"))
        steady_row = next((r for r in rows if r[0].startswith("steady")), None)  # the step timer's, else the wall clock's
        if steady_row:
            rows.append(("real loop / synthetic", f"{100 * float(steady_row[1]) / syn:.0f}%"))
    print(f"\n{Path(args.recipe).name}  device={args.device}  batch={args.batch_size}  workers={args.workers}  "
          f"threads={torch.get_num_threads()}  size={args.size or 'recipe'}")
    width = max(len(r[0]) for r in rows)
    print("| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k.ljust(width)} | {v} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
