"""The training loop shared by every facespot model.

One loop serves all families because every model keeps the same contract
(:mod:`facespot.models.base`); targets and loss per family come from
:mod:`facespot.train.objective`, the images of an epoch from
:mod:`facespot.train.sampling`, records from :mod:`facespot.train.sources`.

Speed: loader workers live for the whole run (the sampler hands each item its epoch, so
no worker restarts between epochs); targets for the whole batch are built in one
vectorised call on the training device; optional ``channels_last``, bf16 autocast (CUDA; CPUs
with native bf16 on request) and ``torch.compile``; an EMA of the weights is what validation
scores and what is saved.

Outputs in ``out_dir``: ``config.yaml`` (the effective recipe), ``metrics.jsonl`` (and
TensorBoard scalars if installed), ``last.pt`` (resumable checkpoint, every
``checkpoint_every`` epochs and, with ``checkpoint_minutes``, inside an epoch too; Ctrl-C or
SIGTERM saves it at the step where the run stops: :mod:`facespot.train.stopping`),
``best.safetensors`` (highest validation AP) and ``final.safetensors`` (the last weights); the
``.safetensors`` files load with ``facespot.models.io.load_model`` as ``facespot eval``/detect expect.
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
from typing import Any

import numpy as np
import torch

from facespot.data.augment import build_augment
from facespot.data.records import FaceRecord
from facespot.errors import FacespotError
from facespot.train import distributed as D
from facespot.train.checkpoint import Checkpoint, check_compatible, load_checkpoint, save_checkpoint
from facespot.train.config import TrainConfig, dump_config
from facespot.train.ema import ModelEMA
from facespot.train.loader import Batch, TrainDataset, make_loader
from facespot.train.objective import check_objective, compute_targets, loss_from_targets, loss_kind
from facespot.train.optim import make_optimizer, make_scheduler
from facespot.train.runlog import RunLog
from facespot.train.sampling import EpochSampler
from facespot.train.stopping import StopRequest
from facespot.train.sources import load_sources, load_weighted_sources, split_holdout  # noqa: F401
from facespot.train.timing import NullTimer


PLAIN_PROGRESS_EVERY = 100  # steps between progress lines when stderr is not a terminal (no bar)


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


def seed_everything(seed: int) -> None:
    """Same seed -> same initial weights, same shuffling, same augmentation."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


def start_from_weights(model: Any, path: str | Path, new_ok: list[str] | tuple[str, ...] = ()) -> None:
    """Load ``init`` weights for fine-tuning. A shipped model carries its calibration (a face-logit
    shift recorded as ``calibrated_threshold``, score-group offsets): both are undone, so training
    continues from what was trained and the next shipping step calibrates afresh."""
    from facespot.models.io import load_weights_into, read_metadata

    load_weights_into(model, path, "cpu", new_ok=tuple(new_ok))
    meta = read_metadata(path)
    if "calibrated_threshold" in meta and hasattr(model, "shift_face_logit"):
        p = min(max(float(meta["calibrated_threshold"]), 1e-6), 1 - 1e-6)
        model.shift_face_logit(float(np.log(p / (1 - p))))  # 0.5 was moved to p: move it back
    if hasattr(model, "reset_score_offsets"):
        model.reset_score_offsets()


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX512-BF16 or AMX); elsewhere it emulates, slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_for(cfg: TrainConfig, device: torch.device):
    """The context a training step's forward pass runs in: bf16 autocast where asked for and fast, else none."""
    if device.type == "cuda" and cfg.amp:
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and cfg.amp_cpu:
        if cpu_has_native_bf16():
            return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
        warnings.warn("amp_cpu: this CPU has no native bf16 (AVX512-BF16 or AMX), so training stays in float32",
                      stacklevel=2)
    return contextlib.nullcontext


def _weights_path_note(path: Path | None) -> str:
    return f"{path}" if path is not None and path.exists() else "none written yet"


@dataclass
class _Data:
    sampler: EpochSampler
    val_records: list[FaceRecord]
    iters: int
    loader: torch.utils.data.DataLoader | None = None  # CPU pipeline
    device_set: Any = None  # facespot.train.device_data.DeviceSquares (data.gpu_augment)
    batch_size: int = 1
    size: tuple[int, int] = (0, 0)
    crop_scales: tuple[float, ...] = ()
    seed: int = 0

    def epoch_batches(self, epoch: int, skip_batches: int = 0):
        """This epoch's batches, from the loader's workers or augmented on the device, less the
        first ``skip_batches`` (trained on before a resume inside the epoch)."""
        self.sampler.set_epoch(epoch, skip_batches * self.batch_size)
        if self.loader is not None:
            return iter(self.loader)
        gen = torch.Generator().manual_seed(int(np.random.default_rng([self.seed, epoch, self.sampler.rank]).integers(2**62)))
        return self.device_set.epoch_batches(self.sampler.epoch_items(), self.batch_size, self.size, self.crop_scales, gen)


def _records(cfg: TrainConfig, train_records, val_records) -> tuple[list[FaceRecord], list[float], list[FaceRecord], Any]:
    """Training records with their repeat factors, the validation records, and an image
    reader when the pixels come from a training pack."""
    repeats, image_source = None, None
    if train_records is None and cfg.data.pack:
        from facespot.train.pack import Pack

        pack = Pack(cfg.data.pack)
        train_records, repeats, image_source = pack.records(), pack.repeats(), pack.image
    elif train_records is None:
        train_records, repeats = load_weighted_sources(cfg.data.train, cfg.source)
    if val_records is None:
        if cfg.data.val:
            val_records = load_sources(cfg.data.val, cfg.source)
        elif cfg.data.pack and cfg.data.val_split > 0:
            print(f"facespot train: data.val_split is not applied to a training pack (its images are all training images); "
                  "give data.val sources to validate", file=sys.stderr)
        elif not cfg.data.pack:
            weight = {id(r): w for r, w in zip(train_records, repeats or [1.0] * len(train_records))}
            train_records, val_records = split_holdout(train_records, cfg.data.val_split, cfg.seed)
            repeats = [weight[id(r)] for r in train_records]
    val_records = list(val_records or [])
    if cfg.data.val_limit is not None and len(val_records) > cfg.data.val_limit:
        pick = np.random.default_rng(cfg.seed).permutation(len(val_records))[: cfg.data.val_limit]
        val_records = [val_records[i] for i in sorted(pick)]
    repeats = [1.0] * len(train_records) if repeats is None else repeats
    if image_source is not None:
        # A pack holds whatever its recipe trained on; never train on a validation image.
        held_out = {str(Path(r.image_path).resolve()) for r in val_records}
        keep = [i for i, r in enumerate(train_records) if str(Path(r.image_path).resolve()) not in held_out]
        if len(keep) < len(train_records):
            print(f"facespot train: {len(train_records) - len(keep)} packed image(s) are validation images; not trained on", file=sys.stderr)
        train_records, repeats = [train_records[i] for i in keep], [repeats[i] for i in keep]
        image_source = functools.partial(pack.image_at, keep)
    return list(train_records), repeats, val_records, image_source


def build_data(cfg: TrainConfig, model: Any, size: tuple[int, int], info: D.DistInfo, device: torch.device,
               train_records=None, val_records=None) -> _Data:
    """Records -> sampler -> loader (workers kept for the whole run) or the GPU-resident set."""
    train_records, repeats, val_records, image_source = _records(cfg, train_records, val_records)
    if not train_records:
        raise FacespotError(f"{cfg.source}: the training sources hold no images")
    device_set = None
    if cfg.data.gpu_augment:
        from facespot.data.negatives import read_record_image
        from facespot.train.device_data import DeviceSquares

        if model.num_keypoints:
            raise FacespotError(f"{cfg.source}: data.gpu_augment does not carry landmarks; {cfg.model.name!r} needs them")
        read = image_source or (lambda i: read_record_image(train_records[i]))
        device_set = DeviceSquares(train_records, read, cfg.data.gpu_side, device, cfg.data.min_face)
        if device_set.unreadable:  # skipped, as the CPU pipeline skips them, but never drawn at all
            names = ", ".join(train_records[i].name for i in device_set.unreadable[:3])
            print(f"facespot train: {len(device_set.unreadable)} training image(s) could not be read and are left out ({names}"
                  f"{', ...' if len(device_set.unreadable) > 3 else ''})", file=sys.stderr)
            repeats = list(repeats)
            for i in device_set.unreadable:
                repeats[i] = 0.0
    sampler = EpochSampler(repeats, cfg.seed, True, info.rank, info.world_size)
    data = _Data(sampler, val_records, len(sampler) // cfg.batch_size, batch_size=cfg.batch_size, size=size,
                 crop_scales=tuple(cfg.data.gpu_crop_scales), seed=cfg.seed)
    if device_set is not None:
        data.device_set = device_set
    else:
        augment = build_augment(cfg.augment, size, where=f"{cfg.source}: augment")
        dataset = TrainDataset(train_records, augment, cfg.seed, cfg.data.min_face, image_source)
        data.loader = make_loader(dataset, cfg.batch_size, cfg.workers, cfg.seed, sampler, pin_memory=device.type == "cuda")
        data.iters = len(data.loader)
    if cfg.max_iters_per_epoch is not None:
        data.iters = min(data.iters, cfg.max_iters_per_epoch)
    if data.iters == 0:
        raise FacespotError(f"{cfg.source}: no full batch of {cfg.batch_size} from {len(sampler)} training images per epoch")
    return data


class _Run:
    """One training run's state; :func:`train` drives it epoch by epoch."""

    def __init__(self, cfg: TrainConfig, model, train_records, val_records, progress, timer) -> None:
        from facespot.models import build

        self.cfg = cfg
        dev_req = cfg.device
        if dev_req == "auto":
            dev_req = "cuda" if torch.cuda.is_available() else "cpu"
        if dev_req.startswith("cuda") and not torch.cuda.is_available():
            raise FacespotError("--device cuda asked for, but this torch build sees no CUDA GPU")
        self.info = D.init_distributed("cuda" if dev_req.startswith("cuda") else "cpu")
        self.device = D.device_for(self.info, dev_req)
        seed_everything(cfg.seed + self.info.rank)
        self.out_dir = Path(cfg.out_dir)
        self.main = self.info.is_main
        self.progress = (self.main and sys.stderr.isatty()) if progress is None else progress
        self.timer = timer or NullTimer()
        self.stop = StopRequest()

        model = build(cfg.model.name, **cfg.model.options) if model is None else model
        if cfg.init:  # fine-tuning: weights only; optimiser, schedule and EMA start afresh
            start_from_weights(model, cfg.init, cfg.init_new)
        self.model = model.to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model_cfg = dict(getattr(model, "config", {}))
        self.model_name = str(self.model_cfg.get("name", cfg.model.name))
        self.size = resolve_input_size(cfg, model)
        self.kind = loss_kind(cfg, model)
        check_objective(cfg, model)
        self.data = build_data(cfg, model, self.size, self.info, self.device, train_records, val_records)
        if cfg.val_every:  # on every rank, so that all stop together
            from facespot.train.validate import check_validation

            check_validation(self.data.val_records, cfg.data.wider_gt_dir, cfg.source)
        self.anchors = torch.from_numpy(np.asarray(model.anchors(*self.size), np.float32)).to(self.device)
        self.optimizer = make_optimizer(cfg, self.model)
        self.scheduler = make_scheduler(cfg, self.optimizer, self.data.iters)
        self.ema = ModelEMA(self.model, cfg.ema_decay) if cfg.ema else None
        self.gen = torch.Generator().manual_seed(cfg.seed + self.info.rank)
        self.start_epoch, self.start_batch, self.step, best_ap = 0, 0, 0, None
        self.resumed = False
        self.result = TrainResult(self.out_dir, None, None, 0, best_ap=best_ap)
        self.last_ckpt = self.out_dir / "last.pt"
        self.best_path = self.out_dir / "best.safetensors"

        net: torch.nn.Module = self.model
        if self.info.enabled:
            net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=False,
            )
        self.net = torch.compile(net) if cfg.compile else net
        self.amp_ctx = autocast_for(cfg, self.device)

    # ------------------------------------------------------------------ resume, outputs

    def resume(self, path: str | Path) -> None:
        ckpt = load_checkpoint(path, self.device)
        check_compatible(ckpt, path, self.model_name, self.model_cfg)
        self.model.load_state_dict(ckpt.model_state)
        if ckpt.optimizer_state:
            self.optimizer.load_state_dict(ckpt.optimizer_state)
        if ckpt.scheduler_state:
            self.scheduler.load_state_dict(ckpt.scheduler_state)
        if self.ema is not None:
            if ckpt.ema_state:
                self.ema.load_state_dict(ckpt.ema_state)
            else:  # a run that kept no average: start it from the resumed weights
                self.ema = ModelEMA(self.model, self.cfg.ema_decay)
        self.start_epoch, self.step, self.result.best_ap = ckpt.epoch, ckpt.global_step, ckpt.best_ap
        self.start_batch = ckpt.batches_done
        self.resumed = True
        if self.start_epoch >= self.cfg.epochs:
            raise FacespotError(
                f"{path}: checkpoint already finished {self.start_epoch} epochs (recipe asks for {self.cfg.epochs}); raise --epochs"
            )

    @property
    def shipped(self) -> torch.nn.Module:
        """The weights validation scores and the run saves: the average when kept."""
        return self.ema.module if self.ema is not None else self.model

    def open_log(self) -> RunLog:
        log = RunLog(self.out_dir, enabled=self.main, resume_step=self.step if self.resumed else None)
        self.result.log_backend = log.backend
        if self.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.yaml").write_text(dump_config(self.cfg), encoding="utf-8")
            if log.backend == "jsonl":
                print(f"facespot train: tensorboard not installed; metrics go to {log.path}", file=sys.stderr)
        return log

    # ------------------------------------------------------------------ one step, one epoch

    def train_step(self, batch: Batch, epoch: int, it: int, log: RunLog) -> float:
        cfg, timer = self.cfg, self.timer
        images = batch.images.to(self.device, non_blocking=True)
        with timer.section("forward_backward"):
            x = self.model.preprocess(images)  # (B, H, W, 3) permuted: already NHWC in memory
            if self.cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self.amp_ctx():
                outputs = [o.float() if o is not None else None for o in self.net(x)]
        with timer.section("targets"):
            targets = compute_targets(cfg, self.model, batch, self.anchors, self.size, outputs[0])
        with timer.section("forward_backward"):
            parts = loss_from_targets(self.kind, cfg, self.model, outputs, targets, self.anchors, self.gen)
            finite = bool(torch.isfinite(parts.total))
            if D.all_max(int(not finite), self.info, self.device):  # every rank stops, none waits in backward
                log.scalars(self.step, {"train/loss": float("nan")}, epoch=epoch + 1)
                value = float(parts.total.detach()) if not finite else "non-finite on another rank"
                raise FacespotError(
                    f"training stopped: the loss became {value} at epoch {epoch + 1}, iteration {it + 1} "
                    f"(terms: {parts.terms}). Last good checkpoint: {_weights_path_note(self.last_ckpt)}. "
                    "Try a lower optim.lr, a longer schedule.warmup_epochs, or grad_clip."
                )
            self.optimizer.zero_grad(set_to_none=True)
            parts.total.backward()
        with timer.section("optimizer"):
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update(self.model)
        self.step += 1
        timer.step_done(len(batch))
        if self.main and (self.step % max(cfg.log_every, 1) == 0 or it == self.data.iters - 1):
            log.scalars(self.step, {**{f"train/{k}": v for k, v in parts.terms.items()}, "train/lr": self.scheduler.get_last_lr()[0]}, epoch=epoch + 1)
        return float(parts.total.detach())

    def train_epoch(self, epoch: int, log: RunLog) -> float:
        from tqdm import tqdm

        self.timer.epoch_started()
        iters = self.data.iters
        bar = tqdm(total=iters, desc=f"epoch {epoch + 1}/{self.cfg.epochs}", disable=not self.progress, unit="it", dynamic_ncols=True)
        first = self.start_batch if epoch == self.start_epoch else 0  # > 0: resumed inside this epoch
        bar.update(first)
        seen, t0, losses, saved = 0, time.perf_counter(), [], time.monotonic()
        batches = self.data.epoch_batches(epoch, first)
        for it in range(first, iters):
            batch = None
            if not self.stop.requested:
                with self.timer.section("data"):
                    try:
                        batch = next(batches, None)
                    except Exception:
                        if not self.stop.requested:  # Ctrl-C also ends the loader's workers: no batch, no bug
                            raise
            # ranks skip or stop together (3: a stop signal, 2: out of batches, 1: every image
            # unreadable), or the others would wait in the gradient all-reduce
            local = 3 if self.stop.requested else 2 if batch is None else int(len(batch) == 0)
            state = D.all_max(local, self.info, self.device)
            if state == 3:
                bar.close()
                self.stop_here(epoch, it)
            if batch is not None and batch.failed:
                self.result.skipped_images += len(batch.failed)
                for f in batch.failed:
                    warnings.warn(f"skipped unreadable image {f.name}: {f.reason}")
            if state == 2:
                break
            if state == 1:
                continue
            loss = self.train_step(batch, epoch, it, log)
            losses.append(loss)
            seen += len(batch)
            rate = seen * self.info.world_size / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(loss=f"{loss:.3f}", img_s=f"{rate:.1f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
            bar.update(1)
            if self.main and self.cfg.checkpoint_minutes and time.monotonic() - saved >= 60 * self.cfg.checkpoint_minutes:
                self.save_last(epoch, batches_done=it + 1)
                saved = time.monotonic()
            if self.main and not self.progress and (it + 1) % PLAIN_PROGRESS_EVERY == 0:  # a log file, not a terminal
                left = (iters - it - 1) * (time.perf_counter() - t0) / (it + 1 - first)
                print(f"facespot train: epoch {epoch + 1}/{self.cfg.epochs}, step {it + 1}/{iters}, loss {loss:.3f}, "
                      f"{rate:.1f} img/s, epoch done in {left / 60:.0f} min", file=sys.stderr, flush=True)  # fmt: skip
        bar.close()
        del batches  # an iterator stopped early hands its workers back for the next epoch
        self.result.step_losses.extend(losses)
        if self.main and seen:
            log.scalars(self.step, {"train/images_per_s": seen * self.info.world_size / max(time.perf_counter() - t0, 1e-9)}, epoch=epoch + 1)
        return sum(losses) / max(len(losses), 1)

    def end_epoch(self, epoch: int, epoch_loss: float, log: RunLog) -> None:
        from facespot.models.io import save_weights

        cfg, result = self.cfg, self.result
        result.epoch_losses.append(epoch_loss)
        result.epochs_done = epoch + 1
        skipped = D.all_reduce_sum(result.skipped_images, self.info, self.device)
        if self.main:
            record: dict[str, Any] = {"epoch/loss": epoch_loss, "epoch/skipped_images": skipped}
            last = epoch + 1 == cfg.epochs
            if self.data.val_records and cfg.val_every and ((epoch + 1) % cfg.val_every == 0 or last):
                from facespot.train.validate import validation_ap

                ap, numbers, _ = validation_ap(
                    self.shipped, self.data.val_records, self.size, self.device, cfg.data.wider_gt_dir, cfg.batch_size,
                    cfg.data.val_max_side,
                )
                result.val_aps.append(ap)
                record.update(numbers)
                if result.best_ap is None or ap > result.best_ap:
                    result.best_ap = ap
                    save_weights(self.shipped, self.best_path, {"val_ap": f"{ap:.6f}", "epoch": str(epoch + 1)})
                    result.best_weights = self.best_path
            log.scalars(self.step, record, epoch=epoch + 1)
            if (epoch + 1) % cfg.checkpoint_every == 0 or last:
                self.save_last(epoch + 1)
        D.barrier(self.info)

    def save_last(self, epochs_done: int, batches_done: int = 0) -> None:
        """``last.pt``: everything a resume needs, at an epoch end or ``batches_done`` into the next."""
        save_checkpoint(self.last_ckpt, Checkpoint(
            self.model_name, self.model_cfg, self.model.state_dict(), self.optimizer.state_dict(),
            self.scheduler.state_dict(), epochs_done, self.step, self.result.best_ap, self.cfg.to_dict(),
            self.ema.state_dict() if self.ema is not None else None, batches_done,
        ))

    def stop_here(self, epoch: int, batches_done: int) -> None:
        """A stop signal arrived: save ``last.pt`` at this batch (every step trained so far kept)
        and raise what the CLI turns into 130 (Ctrl-C) or 143 (SIGTERM)."""
        if self.main:
            self.save_last(epoch, batches_done=batches_done)
            print(f"facespot train: stopped by {self.stop.name} at epoch {epoch + 1}/{self.cfg.epochs}, batch "
                  f"{batches_done}/{self.data.iters} (step {self.step}); saved {self.last_ckpt}: continue with "
                  f"--resume {self.last_ckpt}", file=sys.stderr, flush=True)  # fmt: skip
        raise self.stop.exception()

    def finish(self, log: RunLog) -> None:
        from facespot.models.io import save_weights

        result = self.result
        if self.main:
            result.final_weights = save_weights(self.shipped, self.out_dir / "final.safetensors", {"epochs": str(result.epochs_done)})
            if result.best_weights is None and self.best_path.exists():
                result.best_weights = self.best_path
            if result.skipped_images:
                print(f"facespot train: skipped {result.skipped_images} unreadable image(s) in total", file=sys.stderr)
        log.close()
        D.cleanup(self.info)


def train(
    cfg: TrainConfig,
    resume: str | Path | None = None,
    model: torch.nn.Module | None = None,
    train_records: list[FaceRecord] | None = None,
    val_records: list[FaceRecord] | None = None,
    progress: bool | None = None,
    timer: Any = None,
) -> TrainResult:
    """Run a recipe. ``model``/``*_records`` may be given directly (tests, notebooks);
    otherwise they come from the recipe. ``timer`` (:class:`facespot.train.timing.StepTimer`)
    records where the time goes."""
    if resume is not None and cfg.init:  # before any model or data is built
        raise FacespotError("init (--init) starts a new run from weights; --resume continues one: give one of them")
    run = _Run(cfg, model, train_records, val_records, progress, timer)
    if resume is not None:
        run.resume(resume)
    run.result.epochs_done = run.start_epoch
    log = run.open_log()
    run.net.train()
    try:
        with run.stop.installed():  # Ctrl-C / SIGTERM: last.pt saved at the next step boundary
            for epoch in range(run.start_epoch, cfg.epochs):
                loss = run.train_epoch(epoch, log)
                run.end_epoch(epoch, loss, log)
    except BaseException:
        log.close()  # every metric logged so far reaches the disk
        raise
    run.finish(log)
    return run.result
