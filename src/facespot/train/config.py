"""Training recipes: YAML files checked against a dataclass schema.

A recipe names the model, the data sources, the augmentation steps, the loss, the
optimiser and schedule, and the run settings. Every key is checked: a misspelt key
(``lr_rate``) is an error naming the key and the file, never silently ignored, because a
typo in a recipe otherwise costs a whole training run. Command-line overrides use
dotted paths: ``--set optim.lr=0.01 --set data.val_limit=50``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

from facespot.errors import FacespotError


@dataclass
class ModelConfig:
    name: str = "faceboxes"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceConfig:
    """One annotated data set: ``format`` as ``facespot.data.formats.open_records`` knows it."""

    format: str = "wider"
    path: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    # Text files of image names (one per line, ``#`` comments; relative paths are read from
    # the recipe's folder; one file or a list of them): keep only the listed images, or all but them. A hold-out listed
    # by name stays the same split whatever the seed or the order files are read in.
    include: str | list[str] | None = None
    exclude: str | list[str] | None = None
    # How many times an epoch shows each image of this source (fractions: a fresh random
    # share each epoch), to weight sources against each other without copying files.
    repeat: float = 1.0
    # A label overlay (facespot.data.overlay; relative paths are read from the recipe's folder):
    # landmarks and ignore regions laid over this source's own annotation, e.g. a teacher's.
    labels: str | None = None
    # The model's landmark slots filled from this source's points: slot j takes the source's point
    # keypoints[j] (null: not annotated). Caltech's eyes / nose / mouth centre for a 5-point model
    # (eyes, nose, mouth corners): [0, 1, 2, null, null]. Unset: the source's own order.
    keypoints: list[int | None] | None = None


@dataclass
class DataConfig:
    train: list[SourceConfig] = field(default_factory=list)
    val: list[SourceConfig] = field(default_factory=list)
    # Annotated images held out of training *and* validation for the shipping step
    # (scripts/ship_model.py: the threshold that becomes 0.5, score-group offsets); never trained on.
    calibration: list[SourceConfig] = field(default_factory=list)
    val_split: float = 0.0  # fraction of the train records held out when ``val`` is empty
    val_limit: int | None = 200  # images of the val set scored per evaluation (None = all)
    input_size: list[int] | None = None  # (height, width); None = the model's train_input_size
    min_face: float = 0.0  # drop ground-truth faces smaller than this (pixels, before augmentation)
    pack: str | None = None  # a training pack folder (`facespot data pack`) read instead of data.train
    # The whole training set on the device, cropped / flipped / resized / colour-jittered
    # there in batches (facespot.train.device_data; no landmarks, no ignore regions). gpu_side: long side kept.
    gpu_augment: bool = False
    gpu_side: int = 1024
    gpu_crop_scales: list[float] = field(default_factory=lambda: [0.3, 0.45, 0.6, 0.8, 1.0])
    wider_gt_dir: str | None = None  # WIDER eval_tools folder (.mat files): official-protocol val AP
    # Validate fully convolutional models at each image's own size, long side capped here
    # (as the runtime runs them), instead of squashing every image to the training size.
    val_max_side: int | None = None


@dataclass
class LossConfig:
    kind: str = "auto"  # auto | multibox | yolo | tiny | quality
    assigner: str = "auto"  # auto (the model's) | iou | atss
    atss_topk: int = 9  # ATSS candidates per pyramid level
    qfl_beta: float = 2.0  # quality focal loss modulating exponent
    ignore_below: float = 0.0  # ATSS: faces smaller than this (input pixels) are neither face nor background
    ignore_region_iou: float = 0.25  # background anchors overlapping a source's ignore region this much are ignored
    pos_iou: float = 0.35
    neg_iou: float | None = None
    neg_pos_ratio: float = 3.0
    min_negatives: int = 0
    focal: bool = False
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    box_weight: float = 1.0
    cls_weight: float = 1.0
    landmark_weight: float = 1.0
    lambda_coord: float = 5.0
    lambda_noobj: float = 0.5
    rescore: bool = False
    samples_per_image: int = 256
    max_positive_fraction: float = 0.5


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd | adamw
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])


@dataclass
class ScheduleConfig:
    kind: str = "step"  # step | cosine | constant
    warmup_epochs: float = 0.0
    warmup_start: float = 0.1  # warm-up starts at lr * warmup_start
    milestones: list[int] = field(default_factory=list)  # epochs (step)
    gamma: float = 0.1
    min_lr_ratio: float = 0.0  # cosine floor, as a fraction of lr


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: list[Any] | None = None  # list of {step: {options}}; None = facespot.data.augment.DEFAULT_STEPS
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    epochs: int = 1
    batch_size: int = 8
    workers: int = 2
    amp: bool = True  # bf16 autocast on CUDA
    # bf16 autocast on CPU too, where the CPU has native bf16 (AVX512-BF16 / AMX; otherwise a
    # warning and float32): 1.25x (SpotNet-s) to 1.6x (ResNet-18 Tiny Faces) faster steps on this
    # project's EPYC (README, "Speed, measured"); off by default: the default's campaign is float32
    amp_cpu: bool = False
    grad_clip: float | None = 10.0
    init: str | None = None  # start from these weights (.safetensors of the same model): fine-tuning, fresh optimiser
    # parameter prefixes the init weights may lack (e.g. [head.kps]: landmarks added to a detector trained without)
    init_new: list[str] = field(default_factory=list)
    ema: bool = False  # keep an exponential moving average of the weights; validate and ship it
    ema_decay: float = 0.9998
    channels_last: bool = False  # NHWC tensors: faster depthwise convolutions on CPUs and GPUs
    compile: bool = False  # torch.compile the network (pays off on long GPU runs)
    seed: int = 0
    checkpoint_every: int = 1  # epochs
    # also save last.pt every this many minutes inside an epoch (a resume continues from that batch):
    # a 25-minute CPU epoch cut by a restart loses at most this much; null = only at epoch ends
    checkpoint_minutes: float | None = None
    val_every: int = 1  # epochs; 0 = never
    log_every: int = 20  # iterations between log lines
    max_iters_per_epoch: int | None = None  # cap (smoke tests, quick looks)
    out_dir: str = "runs/train"
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    source: str = field(default="", metadata={"internal": True})  # file the recipe came from

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source", None)
        return d


# ---------------------------------------------------------------- building from plain data


def _check_type(value: Any, tp: Any, where: str) -> Any:
    """Coerce/check ``value`` against a type hint; errors name ``where``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is not None and type(None) in get_args(tp):  # Optional[X]
        if value is None:
            return None
        inner = [a for a in get_args(tp) if a is not type(None)]
        for alt in inner[:-1]:  # X | Y | None: the first type the value fits
            try:
                return _check_type(value, alt, where)
            except FacespotError:
                pass
        return _check_type(value, inner[-1], where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise FacespotError(f"{where}: expected a mapping, got {type(value).__name__}")
        return _from_dict(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise FacespotError(f"{where}: expected a list, got {value!r}")
        (item,) = get_args(tp) or (Any,)
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise FacespotError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FacespotError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FacespotError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise FacespotError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise FacespotError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise FacespotError(f"{where}: unknown key {key!r}; expected one of: {', '.join(sorted(names))}")
        kwargs[key] = _check_type(value, hints[key], f"{where}.{key}" if where else key)
    return cls(**kwargs)


def _validate(cfg: TrainConfig, where: str) -> None:
    def bad(msg: str) -> FacespotError:
        return FacespotError(f"{where}: {msg}")

    if cfg.optim.name not in ("sgd", "adamw"):
        raise bad(f"optim.name must be 'sgd' or 'adamw', got {cfg.optim.name!r}")
    if cfg.schedule.kind not in ("step", "cosine", "constant"):
        raise bad(f"schedule.kind must be step, cosine or constant, got {cfg.schedule.kind!r}")
    if cfg.loss.kind not in ("auto", "multibox", "yolo", "tiny", "quality"):
        raise bad(f"loss.kind must be auto, multibox, yolo, tiny or quality, got {cfg.loss.kind!r}")
    if cfg.loss.assigner not in ("auto", "iou", "atss"):
        raise bad(f"loss.assigner must be auto, iou or atss, got {cfg.loss.assigner!r}")
    if not 0.0 < cfg.ema_decay < 1.0:
        raise bad(f"ema_decay must be in (0, 1), got {cfg.ema_decay}")
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.workers < 0:
        raise bad("epochs and batch_size must be >= 1 and workers >= 0")
    if cfg.checkpoint_every < 1:
        raise bad("checkpoint_every must be >= 1")
    if cfg.checkpoint_minutes is not None and not cfg.checkpoint_minutes > 0:
        raise bad(f"checkpoint_minutes must be > 0 (or null), got {cfg.checkpoint_minutes}")
    if not 0.0 <= cfg.data.val_split < 1.0:
        raise bad(f"data.val_split must be in [0, 1), got {cfg.data.val_split}")
    if cfg.data.input_size is not None and (len(cfg.data.input_size) != 2 or min(cfg.data.input_size) < 8):
        raise bad(f"data.input_size must be [height, width], got {cfg.data.input_size}")
    if not cfg.data.train and not cfg.data.pack:
        raise bad("data.train must list at least one source ({format: ..., path: ...}) or data.pack a training pack")
    if cfg.data.gpu_side < 16 or not cfg.data.gpu_crop_scales or min(cfg.data.gpu_crop_scales) <= 0:
        raise bad("data.gpu_side must be >= 16 and data.gpu_crop_scales positive numbers")
    for i, s in enumerate(cfg.data.train + cfg.data.val + cfg.data.calibration):
        if not s.path and s.format != "synthetic":
            raise bad(f"data source {i} has no path")
        if not (0 <= s.repeat < float("inf")):
            raise bad(f"data source {i}: repeat must be a finite number >= 0, got {s.repeat}")
    if cfg.loss.atss_topk < 1:
        raise bad(f"loss.atss_topk must be >= 1, got {cfg.loss.atss_topk}")
    if cfg.data.val_max_side is not None and cfg.data.val_max_side < 16:
        raise bad(f"data.val_max_side must be >= 16 (or null: the model's input size), got {cfg.data.val_max_side}")


def config_from_dict(data: dict[str, Any], source: str = "<config>") -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from parsed YAML."""
    if not isinstance(data, dict):
        raise FacespotError(f"{source}: a training recipe must be a YAML mapping")
    try:
        cfg = _from_dict(TrainConfig, data, "")
    except FacespotError as exc:
        raise FacespotError(f"{source}: {exc}") from None
    cfg.source = source
    _validate(cfg, source)
    return cfg


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=0.01"`` -> (["optim", "lr"], 0.01); the value is read as YAML."""
    if "=" not in text:
        raise FacespotError(f"--set {text!r}: expected KEY=VALUE, e.g. optim.lr=0.01")
    key, raw = text.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise FacespotError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise FacespotError(f"--set {text!r}: value is not valid YAML ({exc})") from None
    return keys, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` overrides to parsed YAML (before schema checking)."""
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            nxt = node.get(k)
            if nxt is None:
                nxt = node[k] = {}
            if not isinstance(nxt, dict):
                raise FacespotError(f"--set {text!r}: {k!r} is not a mapping")
            node = nxt
        node[keys[-1]] = value
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a recipe file, apply ``--set`` overrides, check it against the schema.

    Relative data paths stay relative to the working directory (as a user types them),
    not to the recipe, so ``--set data.train.0.path=...`` means what it says; ``include`` /
    ``exclude`` name lists are read from the recipe's folder and stored as absolute paths.
    """
    path = Path(path)
    if not path.is_file():
        raise FacespotError(f"{path}: training recipe not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise FacespotError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except UnicodeDecodeError:  # an image or a binary file given by mistake
        raise FacespotError(f"{path}: not a UTF-8 text file (a training recipe is YAML text)") from None
    except OSError as exc:
        raise FacespotError(f"{path}: cannot read the training recipe ({exc.strerror or exc})") from None
    data = data or {}
    if not isinstance(data, dict):
        raise FacespotError(f"{path}: a training recipe must be a YAML mapping")
    _expand_list_overrides(data, overrides or [])
    data = apply_overrides(data, [o for o in overrides or [] if not _is_list_override(o)])
    cfg = config_from_dict(data, str(path))
    # Image-name lists belong to the recipe (configs/splits/...): pin them to its folder now,
    # so the config.yaml a run saves elsewhere still points at the same files.
    def pinned(value: str) -> str:
        return value if Path(value).is_absolute() else str((path.parent / value).resolve())

    for s in cfg.data.train + cfg.data.val + cfg.data.calibration:
        for attr in ("include", "exclude", "labels"):
            value = getattr(s, attr)
            if isinstance(value, list):
                setattr(s, attr, [pinned(v) for v in value])
            elif value:
                setattr(s, attr, pinned(value))
    return cfg


def _is_list_override(text: str) -> bool:
    key = text.split("=", 1)[0]
    return any(part.isdigit() for part in key.split("."))


def _expand_list_overrides(data: dict[str, Any], overrides: list[str]) -> None:
    """``data.train.0.path=X``: an index into a list (only existing items)."""
    for text in overrides:
        if not _is_list_override(text):
            continue
        keys, value = parse_override(text)
        node: Any = data
        for k in keys[:-1]:
            if isinstance(node, list):
                idx = int(k)
                if idx >= len(node):
                    raise FacespotError(f"--set {text!r}: index {idx} is past the end of the list")
                node = node[idx]
            elif isinstance(node, dict):
                node = node.setdefault(k, {})
            else:
                raise FacespotError(f"--set {text!r}: cannot index into {node!r}")
        last = keys[-1]
        if isinstance(node, list):
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise FacespotError(f"--set {text!r}: cannot set a key on {node!r}")


def dump_config(cfg: TrainConfig) -> str:
    """The effective recipe as YAML, written next to the run's outputs."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
