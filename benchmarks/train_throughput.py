"""Training throughput, images per second, per model: the network step and the input
pipeline measured apart, so a slow run can be blamed on the right side.

For every model (or the ones ``--models`` names) it measures:

* **step**: one training step on a synthetic batch, as :func:`facespot.train.loop.train`
  does it: ``model.preprocess`` -> forward (bf16 autocast on CUDA) -> targets + loss through
  :func:`facespot.train.loop.compute_loss` -> backward -> gradient clipping -> optimiser step.
  Random images and boxes are fine here: the cost of a step does not depend on the pixels,
  and only mildly on the number of faces (a few per image, like WIDER's median).
* **decode+aug /core**: the CPU input pipeline alone, one process and one thread, from real
  JPEGs (``../shared/data/facemask-voc`` or ``caltech-webfaces`` when present, else the test
  fixtures): :class:`facespot.train.loader.TrainDataset` items with the model's recipe
  augmentation (``configs/*.yaml``; the default steps where a model has none). Multiply by
  the loader workers you can give it to see whether the CPU keeps up with the step.
* **cached /core**: the same with :mod:`facespot.train.cache` (memmap read + augmentation,
  no JPEG decoding).
* **gpu crop**: on CUDA, the ``data.gpu_augment`` path: whole cached squares to the GPU and
  :func:`facespot.train.cache.gpu_crop_resize` for the batch (images/s, host read included).

    python benchmarks/train_throughput.py                                  # every model
    python benchmarks/train_throughput.py --models faceboxes@512,blazeface_front --threads 1 --iters 2

Numbers on a machine shared with other jobs are noisy; repeat before trusting a difference.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout without installing

from facespot.data.augment import build_augment  # noqa: E402
from facespot.data.records import FaceRecord  # noqa: E402
from facespot.train.config import TrainConfig, load_config  # noqa: E402
from facespot.train.loader import Batch, TrainDataset, collate  # noqa: E402
from facespot.train.loop import compute_loss, loss_kind, make_optimizer, resolve_input_size  # noqa: E402


@dataclass
class Spec:
    """One benchmarked configuration: a label, the registry name, options, input size and
    the recipe whose loss settings and augmentation it borrows."""

    label: str
    model: str
    options: dict[str, Any]
    size: int
    recipe: str | None


SPECS = [
    Spec("faceboxes@1024", "faceboxes", {}, 1024, "faceboxes_wider.yaml"),
    Spec("faceboxes@512", "faceboxes", {}, 512, "default.yaml"),
    Spec("blazeface_front", "blazeface_front", {}, 128, "blazeface_front.yaml"),
    Spec("blazeface_back", "blazeface_back", {}, 256, None),
    Spec("grid_mobilenetv2", "grid_mobilenetv2", {"alpha": 0.75, "input_size": 224, "grid_size": 7}, 224, "grid_mobilenetv2.yaml"),
    Spec("yolo_pool_resnet", "yolo", {"backbone": "pool_resnet", "input_size": 448, "grid_size": 7, "boxes_per_cell": 2}, 448, "yolo_poolresnet.yaml"),
    Spec("tinyfaces_r18", "tinyfaces", {"backbone": "resnet18"}, 384, "tinyfaces_r50_wider.yaml"),
]


@dataclass
class Row:
    spec: Spec
    batch: int
    device: str
    step: float | None = None
    pipeline: float | None = None
    cached: float | None = None
    gpu_crop: float | None = None
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ set-up


def recipe_for(spec: Spec) -> TrainConfig:
    """The model's recipe (data paths unused), forced to this spec's model and input size."""
    cfg = load_config(ROOT / "configs" / spec.recipe) if spec.recipe else TrainConfig()
    cfg.model.name, cfg.model.options = spec.model, dict(spec.options)
    cfg.data.input_size = [spec.size, spec.size]
    return cfg


def synthetic_batch(n: int, size: int, keypoints: int, rng: np.random.Generator) -> Batch:
    """Random uint8 images with 1-8 faces each (normalised xyxy, 3-40 % of the side), and
    landmarks inside the boxes when the model predicts them."""
    images = torch.from_numpy(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8))
    boxes, points = [], []
    for _ in range(n):
        k = int(rng.integers(1, 9))
        wh = rng.uniform(0.03, 0.4, (k, 1)) * np.array([[1.0, 1.25]])
        xy = rng.uniform(0, 1, (k, 2)) * (1 - wh)
        b = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        boxes.append(torch.from_numpy(b))
        if keypoints:
            p = xy[:, None, :] + rng.uniform(0.2, 0.8, (k, keypoints, 2)) * wh[:, None, :]
            points.append(torch.from_numpy(p.astype(np.float32)))
        else:
            points.append(None)
    return Batch(images, boxes, points, [f"synthetic_{i}" for i in range(n)])


def real_records(limit: int, seed: int = 0) -> tuple[list[FaceRecord], str]:
    """Up to ``limit`` annotated real photos (a seeded sample), else the test fixtures."""
    from facespot.data.formats import open_records

    for fmt, path in (("voc", SHARED / "facemask-voc"), ("caltech", SHARED / "caltech-webfaces")):
        if path.is_dir():
            recs = open_records(path, fmt)
            pick = np.random.default_rng(seed).permutation(len(recs))[:limit]
            return [recs[i] for i in sorted(pick)], f"{len(pick)} photos of {path.name}"
    fix = ROOT / "tests" / "fixtures" / "data"
    recs = open_records(fix / "voc", "voc") + open_records(fix / "wider", "wider")
    return recs[:limit], f"{min(len(recs), limit)} tiny fixture images (tests/fixtures/data; pipeline numbers are optimistic)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------ measurements


def measure_step(spec: Spec, cfg: TrainConfig, batch_size: int, iters: int, device: torch.device) -> float:
    """Images/s of full training steps on one synthetic batch (after two warm-up steps)."""
    from facespot.models import build

    torch.manual_seed(0)
    model = build(spec.model, **spec.options).to(device)
    size = resolve_input_size(cfg, model)
    kind = loss_kind(cfg, model)
    anchors = torch.from_numpy(np.asarray(model.anchors(*size), np.float32)).to(device)
    optimizer = make_optimizer(cfg, model)
    batch = synthetic_batch(batch_size, size[0], model.num_keypoints, np.random.default_rng(0))
    batch.boxes = [b.to(device) for b in batch.boxes]
    batch.points = [None if p is None else p.to(device) for p in batch.points]
    gen = torch.Generator().manual_seed(0)
    amp = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" and cfg.amp else contextlib.nullcontext
    host_images = batch.images.pin_memory() if device.type == "cuda" else batch.images
    model.train()

    def step() -> None:
        x = model.preprocess(host_images.to(device, non_blocking=True))
        with amp():
            outputs = model(x)
        parts = compute_loss(kind, cfg, model, [o.float() if o is not None else None for o in outputs], batch, anchors, gen)
        optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()

    for _ in range(2):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    sync(device)
    return batch_size * iters / (time.perf_counter() - t0)


def measure_items(dataset: TrainDataset, n: int) -> float:
    """Items/s of ``dataset[i]`` in this process (one thread), collated in batches of 8 as
    the loader would; one warm-up item first."""
    dataset[0]
    t0 = time.perf_counter()
    items = []
    for i in range(n):
        items.append(dataset[i % len(dataset)])
        if len(items) == 8:
            collate(items)
            items = []
    if items:
        collate(items)
    return n / (time.perf_counter() - t0)


def measure_gpu_crop(cache: Any, size: int, batch_size: int, iters: int, device: torch.device, scales: list[float]) -> float:
    """Images/s of the ``data.gpu_augment`` path: memmap squares -> collate -> host-to-GPU
    copy -> :func:`gpu_augment_batch` (one ``grid_sample`` crop/flip/resize)."""
    from facespot.train.cache import CachedSquares, gpu_augment_batch

    ds = CachedSquares(cache)
    rng = np.random.default_rng(0)

    def one(k: int) -> None:
        items = [ds[(k * batch_size + j) % len(ds)] for j in range(batch_size)]
        b = collate(items)
        if device.type == "cuda":
            b.images = b.images.pin_memory()  # as the loader does with pin_memory=True
        gpu_augment_batch(b, (size, size), scales, rng, device)

    one(0)
    sync(device)
    t0 = time.perf_counter()
    for k in range(iters):
        one(k + 1)
    sync(device)
    return batch_size * iters / (time.perf_counter() - t0)


# ------------------------------------------------------------------------------ main


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help=f"comma-separated labels or model names (default all): {', '.join(s.label for s in SPECS)}")
    ap.add_argument("--batch", type=int, help="images per step (default 4 on CPU, 32 on CUDA)")
    ap.add_argument("--iters", type=int, help="timed steps per model after 2 warm-up steps (default 3 on CPU, 20 on CUDA)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto: cuda when present)")
    ap.add_argument("--threads", type=int, default=None, help="torch/OpenCV threads for the step (default: torch's)")
    ap.add_argument("--images", type=int, default=24, help="pipeline items timed per model (default 24)")
    ap.add_argument("--cache-side", type=int, default=1024, help="side of the decoded-image cache squares (default 1024)")
    ap.add_argument("--no-pipeline", action="store_true", help="time the network step only")
    args = ap.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else "cpu" if args.device == "auto" else args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: this torch build sees no CUDA GPU")
    batch = args.batch or (32 if device.type == "cuda" else 4)
    iters = args.iters or (20 if device.type == "cuda" else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    step_threads = torch.get_num_threads()

    specs = SPECS
    if args.models:
        want = [w.strip() for w in args.models.split(",") if w.strip()]
        specs = [s for s in SPECS if s.label in want or s.model in want]
        unknown = [w for w in want if not any(w in (s.label, s.model) for s in SPECS)]
        if unknown or not specs:
            ap.error(f"--models: unknown {', '.join(unknown) or args.models}; known: {', '.join(s.label for s in SPECS)}")

    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({step_threads} threads)"
    print(f"device: {dev_name}; torch {torch.__version__}; batch {batch}, {iters} timed steps", flush=True)

    records, cache, tmp = [], None, None
    if not args.no_pipeline:
        records, where = real_records(args.images)
        print(f"pipeline images: {where}; per core = 1 process, 1 thread", flush=True)
        from facespot.train.cache import ImageCache, write_cache

        tmp = tempfile.TemporaryDirectory(prefix="facespot_cache_")
        cv2.setNumThreads(1)
        write_cache(records, tmp.name, side=args.cache_side)
        cache = ImageCache(tmp.name)
        print(f"cache: {len(cache)} squares of {cache.side} px in {tmp.name}", flush=True)

    rows: list[Row] = []
    for spec in specs:
        row = Row(spec, batch, str(device))
        rows.append(row)
        cfg = recipe_for(spec)
        try:
            cv2.setNumThreads(step_threads)
            row.step = measure_step(spec, cfg, batch, iters, device)
        except Exception as exc:  # one broken model must not hide the others' numbers
            row.notes.append(f"step failed: {type(exc).__name__}: {exc}")
        if not args.no_pipeline:
            size = (spec.size, spec.size)
            augment = build_augment(cfg.augment, size, where=f"{spec.recipe or 'default'}: augment")
            saved = torch.get_num_threads()
            torch.set_num_threads(1)
            cv2.setNumThreads(1)
            try:
                row.pipeline = measure_items(TrainDataset(records, augment, 0), args.images)
                row.cached = measure_items(TrainDataset(cache.records(), augment, 0, image_source=cache.image), args.images)
                if device.type == "cuda":
                    torch.set_num_threads(saved)
                    row.gpu_crop = measure_gpu_crop(cache, spec.size, batch, max(iters // 2, 3), device, cfg.data.gpu_crop_scales)
            except Exception as exc:
                row.notes.append(f"pipeline failed: {type(exc).__name__}: {exc}")
            torch.set_num_threads(saved)
        print(f"  {spec.label}: step {fmt(row.step)} img/s, decode+aug {fmt(row.pipeline)}, cached {fmt(row.cached)}, gpu crop {fmt(row.gpu_crop)}", flush=True)

    head = ["model", "input", "batch", "device", "step img/s", "decode+aug img/s/core", "cached img/s/core", "gpu crop img/s"]
    table = [[r.spec.label, f"{r.spec.size}x{r.spec.size}", str(r.batch), r.device, fmt(r.step), fmt(r.pipeline), fmt(r.cached), fmt(r.gpu_crop)] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(head)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for t in table:
        print("  ".join(v.ljust(w) if i < 4 else v.rjust(w) for i, (v, w) in enumerate(zip(t, widths))))
    for r in rows:
        for n in r.notes:
            print(f"note: {r.spec.label}: {n}")
    if rows and all(r.step and r.pipeline for r in rows):
        print("\nloader workers needed to keep up with the step (decode+aug / cached):")
        for r in rows:
            need = r.step / r.pipeline
            need_c = r.step / r.cached if r.cached else float("nan")
            print(f"  {r.spec.label}: {need:.2f} / {need_c:.2f}")
    if tmp is not None:
        tmp.cleanup()
    return 1 if any(r.notes for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
