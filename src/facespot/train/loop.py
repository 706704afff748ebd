"""The training loop shared by every facespot model.

One loop serves all families because every model keeps the same contract
(:mod:`facespot.models.base`): dense ``(deltas, logits[, points])`` over anchors that
``model.anchors(h, w)`` lists. What differs per family is chosen from the model itself:
target assignment by ``model.coding.kind`` and the loss by ``loss.kind`` (``auto``:
YOLOv1 loss for grid coding, balanced template sampling for Tiny Faces, SSD multibox
with hard negative mining otherwise).

Outputs in ``out_dir``: ``config.yaml`` (the effective recipe), ``metrics.jsonl`` (and
TensorBoard scalars if installed), ``last.pt`` (resumable checkpoint, every
``checkpoint_every`` epochs), ``best.safetensors`` (highest validation AP) and
``final.safetensors`` (the last weights); the ``.safetensors`` files load with
``facespot.models.io.load_model`` as ``facespot eval``/detect expect.
"""

from __future__ import annotations

import contextlib
import functools
import random
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from facespot.data.augment import build_augment
from facespot.data.records import FaceRecord
from facespot.errors import FacespotError
from facespot.train import distributed as D
from facespot.train.checkpoint import Checkpoint, check_compatible, load_checkpoint, save_checkpoint
from facespot.train.config import SourceConfig, TrainConfig, dump_config
from facespot.train.loader import Batch, TrainDataset, make_loader
from facespot.train.losses import LossParts, multibox_loss, tiny_loss, yolo_loss
from facespot.train.runlog import RunLog
from facespot.train.schedule import lr_factor
from facespot.train.targets import build_targets


@dataclass
class TrainResult:
    out_dir: Path
    final_weights: Path | None
    best_weights: Path | None
    epochs_done: int
    epoch_losses: list[float] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    best_ap: float | None = None
    val_aps: list[float] = field(default_factory=list)
    skipped_images: int = 0
    log_backend: str = "jsonl"


# ------------------------------------------------------------------------------ helpers


def seed_everything(seed: int) -> None:
    """Same seed -> same initial weights, same shuffling, same augmentation."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_sources(sources: Sequence[SourceConfig], where: str) -> list[FaceRecord]:
    """Records of every source, through the data package's format dispatcher."""
    try:
        from facespot.data.formats import open_records
    except ImportError as exc:  # pragma: no cover - the data package is part of facespot
        raise FacespotError(f"{where}: the data formats module is unavailable ({exc})") from None
    records: list[FaceRecord] = []
    for s in sources:
        got = open_records(s.path, s.format, **s.options) if s.options else open_records(s.path, s.format)
        if s.include:
            keep = read_name_list(s.include, where)
            got = [r for r in got if r.name in keep]
            if not got:
                raise FacespotError(f"{where}: none of the images listed in {s.include} is in {s.path}")
        if s.exclude:
            drop = read_name_list(s.exclude, where)
            got = [r for r in got if r.name not in drop]
        records.extend(got)
    return records


def read_name_list(path: str, where: str) -> set[str]:
    """Image names of a split file (one per line, ``#`` starts a comment), found next to
    the recipe when the path is relative."""
    p = Path(path)
    if not p.is_absolute() and where and Path(where).exists():
        p = Path(where).parent / p
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FacespotError(f"{where}: cannot read image list {p}: {exc.strerror or exc}") from None
    return {ln.split("#", 1)[0].strip() for ln in lines} - {""}


def split_holdout(records: list[FaceRecord], fraction: float, seed: int) -> tuple[list[FaceRecord], list[FaceRecord]]:
    """Deterministic train/val split by a seeded permutation (same seed, same split)."""
    if fraction <= 0 or len(records) < 2:
        return records, []
    idx = np.random.default_rng(seed).permutation(len(records))
    n_val = max(1, int(round(len(records) * fraction)))
    val = set(idx[:n_val].tolist())
    return [r for i, r in enumerate(records) if i not in val], [r for i, r in enumerate(records) if i in val]


def resolve_input_size(cfg: TrainConfig, model: Any) -> tuple[int, int]:
    fixed = getattr(model, "fixed_input_size", None)
    if cfg.data.input_size is not None:
        size = (int(cfg.data.input_size[0]), int(cfg.data.input_size[1]))
        if fixed is not None and tuple(fixed) != size:
            raise FacespotError(
                f"{cfg.source}: model {cfg.model.name!r} needs input {fixed[0]}x{fixed[1]}, "
                f"data.input_size asks for {size[0]}x{size[1]}"
            )
        return size
    if fixed is not None:
        return (int(fixed[0]), int(fixed[1]))
    return tuple(int(v) for v in getattr(model, "train_input_size", (640, 640)))  # type: ignore[return-value]


def loss_kind(cfg: TrainConfig, model: Any) -> str:
    if cfg.loss.kind != "auto":
        return cfg.loss.kind
    if model.coding.kind == "grid":
        return "yolo"
    if str(getattr(model, "config", {}).get("name", getattr(model, "name", ""))).startswith("tinyfaces"):
        return "tiny"
    return "multibox"


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Weight decay on conv/linear weights only: decaying BatchNorm scales and biases
    only pulls them towards zero without regularising anything."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    o = cfg.optim
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0)
    return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas))


def compute_loss(
    kind: str, cfg: TrainConfig, model: Any, outputs: Sequence[torch.Tensor], batch: Batch, anchors: torch.Tensor,
    generator: torch.Generator | None = None,
) -> LossParts:
    deltas, logits = outputs[0], outputs[1]
    points = outputs[2] if len(outputs) > 2 else None
    lc = cfg.loss
    targets = build_targets(
        batch.boxes, anchors, model.coding.kind, model.coding.variances,
        batch.points if model.num_keypoints else None, model.num_keypoints,
        lc.pos_iou, lc.neg_iou, deltas if model.coding.kind == "grid" else None,
    )
    if kind == "yolo":
        return yolo_loss(deltas, logits, targets, lc.lambda_coord, lc.lambda_noobj, lc.rescore, anchors)
    if kind == "tiny":
        return tiny_loss(deltas, logits, targets, lc.samples_per_image, lc.max_positive_fraction, lc.box_weight, generator)
    return multibox_loss(
        deltas, logits, targets, points, lc.neg_pos_ratio, lc.min_negatives, lc.box_weight, lc.cls_weight,
        lc.landmark_weight, lc.focal, lc.focal_alpha, lc.focal_gamma,
    )


def _weights_path_note(path: Path | None) -> str:
    return f"{path}" if path is not None and path.exists() else "none written yet"


# ------------------------------------------------------------------------------ the loop


def train(
    cfg: TrainConfig,
    resume: str | Path | None = None,
    model: torch.nn.Module | None = None,
    train_records: list[FaceRecord] | None = None,
    val_records: list[FaceRecord] | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Run a recipe. ``model``/``*_records`` may be given directly (tests, notebooks);
    otherwise they come from the recipe."""
    from facespot.models import build
    from facespot.models.io import save_weights

    dev_req = cfg.device
    if dev_req == "auto":
        dev_req = "cuda" if torch.cuda.is_available() else "cpu"
    if dev_req.startswith("cuda") and not torch.cuda.is_available():
        raise FacespotError("--device cuda asked for, but this torch build sees no CUDA GPU")
    info = D.init_distributed("cuda" if dev_req.startswith("cuda") else "cpu")
    device = D.device_for(info, dev_req)
    seed_everything(cfg.seed + info.rank)
    out_dir = Path(cfg.out_dir)
    main = info.is_main
    if progress is None:
        progress = main and sys.stderr.isatty()

    if model is None:
        model = build(cfg.model.name, **cfg.model.options)
    model = model.to(device)
    model_cfg = dict(getattr(model, "config", {}))
    size = resolve_input_size(cfg, model)
    kind = loss_kind(cfg, model)

    if train_records is None and cfg.data.cache and not cfg.data.train:
        train_records = []  # everything comes from the cache
    if train_records is None:
        train_records = load_sources(cfg.data.train, cfg.source)
        if val_records is None:
            if cfg.data.val:
                val_records = load_sources(cfg.data.val, cfg.source)
            else:
                train_records, val_records = split_holdout(train_records, cfg.data.val_split, cfg.seed)
    val_records = list(val_records or [])
    if cfg.data.val_limit is not None and len(val_records) > cfg.data.val_limit:
        pick = np.random.default_rng(cfg.seed).permutation(len(val_records))[: cfg.data.val_limit]
        val_records = [val_records[i] for i in sorted(pick)]

    augment = build_augment(cfg.augment, size, where=f"{cfg.source}: augment")
    image_source = None
    gpu_aug = bool(cfg.data.cache and cfg.data.gpu_augment)
    if cfg.data.cache:
        from facespot.train.cache import CachedSquares, ImageCache

        cache = ImageCache(cfg.data.cache)
        if gpu_aug and model.num_keypoints:
            raise FacespotError(f"{cfg.source}: data.gpu_augment does not carry landmarks; {cfg.model.name!r} needs them")
        # The cache holds every training-source image; never train on a validation image.
        held_out = {str(Path(r.image_path).resolve()) for r in val_records}
        cached = cache.records()
        keep = [i for i, r in enumerate(cached) if str(Path(r.image_path).resolve()) not in held_out]
        if len(keep) < len(cached):
            print(f"facespot train: {len(cached) - len(keep)} cached image(s) are validation images; not trained on", file=sys.stderr)
        train_records, image_source = [cached[i] for i in keep], functools.partial(cache.image_at, keep)
    if not train_records:
        raise FacespotError(f"{cfg.source}: the training sources hold no images")
    if gpu_aug:
        dataset = CachedSquares(cache, cfg.data.min_face, keep)
    else:
        dataset = TrainDataset(train_records, augment, cfg.seed, cfg.data.min_face, image_source)
    gpu_rng = np.random.default_rng([cfg.seed, info.rank, 7])
    sampler = D.make_sampler(dataset, info, cfg.seed)
    loader = make_loader(dataset, cfg.batch_size, cfg.workers, True, cfg.seed, sampler, pin_memory=device.type == "cuda")
    iters = len(loader)
    if cfg.max_iters_per_epoch is not None:
        iters = min(iters, cfg.max_iters_per_epoch)
    if iters == 0:
        raise FacespotError(f"{cfg.source}: no full batch of {cfg.batch_size} from {len(dataset)} training images")

    anchors = torch.from_numpy(np.asarray(model.anchors(*size), np.float32)).to(device)
    optimizer = make_optimizer(cfg, model)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg.schedule, iters, cfg.epochs))

    start_epoch, step, best_ap = 0, 0, None
    if resume is not None:
        ckpt = load_checkpoint(resume, device)
        check_compatible(ckpt, resume, str(model_cfg.get("name", cfg.model.name)), model_cfg)
        model.load_state_dict(ckpt.model_state)
        if ckpt.optimizer_state:
            optimizer.load_state_dict(ckpt.optimizer_state)
        if ckpt.scheduler_state:
            scheduler.load_state_dict(ckpt.scheduler_state)
        start_epoch, step, best_ap = ckpt.epoch, ckpt.global_step, ckpt.best_ap
        if start_epoch >= cfg.epochs:
            raise FacespotError(f"{resume}: checkpoint already finished {start_epoch} epochs (recipe asks for {cfg.epochs}); raise --epochs")

    net: torch.nn.Module = model
    if info.enabled:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=False
        )

    use_amp = bool(cfg.amp) and device.type == "cuda"
    amp_ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else contextlib.nullcontext
    log = RunLog(out_dir, enabled=main)
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(dump_config(cfg), encoding="utf-8")
        if log.backend == "jsonl":
            print(f"facespot train: tensorboard not installed; metrics go to {log.path}", file=sys.stderr)
    last_ckpt = out_dir / "last.pt"
    best_path = out_dir / "best.safetensors"
    result = TrainResult(out_dir, None, None, start_epoch, best_ap=best_ap, log_backend=log.backend)
    gen = torch.Generator().manual_seed(cfg.seed + info.rank)

    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None

    net.train()
    for epoch in range(start_epoch, cfg.epochs):
        dataset.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        bar = tqdm(total=iters, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, unit="it", dynamic_ncols=True) if tqdm else None
        seen, t0, loss_sum, n_loss = 0, time.perf_counter(), 0.0, 0
        for it, batch in enumerate(loader):
            if it >= iters:
                break
            if batch.failed:
                result.skipped_images += len(batch.failed)
                for f in batch.failed:
                    warnings.warn(f"skipped unreadable image {f.name}: {f.reason}")
            if len(batch) == 0:
                continue
            if gpu_aug:
                from facespot.train.cache import gpu_augment_batch

                batch = gpu_augment_batch(batch, size, cfg.data.gpu_crop_scales, gpu_rng, device)
            images = batch.images.to(device, non_blocking=True)
            x = model.preprocess(images)
            with amp_ctx():
                outputs = net(x)
            parts = compute_loss(kind, cfg, model, [o.float() if o is not None else None for o in outputs], batch, anchors, gen)
            if not torch.isfinite(parts.total):
                log.scalars(step, {"train/loss": float("nan")}, epoch=epoch + 1)
                raise FacespotError(
                    f"training stopped: the loss became {float(parts.total.detach())} at epoch {epoch + 1}, iteration {it + 1} "
                    f"(terms: {parts.terms}). Last good checkpoint: {_weights_path_note(last_ckpt)}. "
                    "Try a lower optim.lr, a longer schedule.warmup_epochs, or grad_clip."
                )
            optimizer.zero_grad(set_to_none=True)
            parts.total.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            seen += len(batch)
            loss_val = float(parts.total.detach())
            loss_sum += loss_val
            n_loss += 1
            result.step_losses.append(loss_val)
            rate = seen * info.world_size / max(time.perf_counter() - t0, 1e-9)
            if bar is not None:
                bar.set_postfix(loss=f"{loss_val:.3f}", img_s=f"{rate:.1f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
                bar.update(1)
            if main and (step % max(cfg.log_every, 1) == 0 or it == iters - 1):
                log.scalars(step, {**{f"train/{k}": v for k, v in parts.terms.items()}, "train/lr": scheduler.get_last_lr()[0], "train/images_per_s": rate}, epoch=epoch + 1)
        if bar is not None:
            bar.close()
        epoch_loss = loss_sum / max(n_loss, 1)
        result.epoch_losses.append(epoch_loss)
        result.epochs_done = epoch + 1
        skipped = D.all_reduce_sum(result.skipped_images, info, device)

        if main:
            record: dict[str, Any] = {"epoch/loss": epoch_loss, "epoch/skipped_images": skipped}
            do_val = val_records and cfg.val_every and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs)
            if do_val:
                ap, numbers, _ = _validate(model, val_records, size, device, cfg.data.wider_gt_dir, cfg.batch_size)
                result.val_aps.append(ap)
                record.update(numbers)
                if result.best_ap is None or ap > result.best_ap:
                    result.best_ap = ap
                    save_weights(model, best_path, {"val_ap": f"{ap:.6f}", "epoch": str(epoch + 1)})
                    result.best_weights = best_path
            log.scalars(step, record, epoch=epoch + 1)
            if (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == cfg.epochs:
                save_checkpoint(
                    last_ckpt,
                    Checkpoint(
                        str(model_cfg.get("name", cfg.model.name)), model_cfg, model.state_dict(), optimizer.state_dict(),
                        scheduler.state_dict(), epoch + 1, step, result.best_ap, cfg.to_dict(),
                    ),
                )
        D.barrier(info)

    if main:
        result.final_weights = save_weights(model, out_dir / "final.safetensors", {"epochs": str(result.epochs_done)})
        if result.best_weights is None and best_path.exists():
            result.best_weights = best_path
        if result.skipped_images:
            print(f"facespot train: skipped {result.skipped_images} unreadable image(s) in total", file=sys.stderr)
    log.close()
    D.cleanup(info)
    return result


def _validate(model, records, size, device, wider_gt_dir, batch_size):
    from facespot.train.validate import validation_ap

    return validation_ap(model, records, size, device, wider_gt_dir, batch_size)
