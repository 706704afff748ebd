"""Torch-free model specs: everything the runtime needs to decode a network's outputs.

A :class:`ModelSpec` is the *description* of a detector without its weights or graph: its
name and options, ``anchors(height, width)`` (NumPy, from :mod:`facespot.anchors`), the
input normalisation, box coding, keypoint count, fixed / training input size and suppression.
With ONNX Runtime the network is the ``.onnx`` graph, so a spec is all the runtime needs
besides it -- and building one imports neither torch nor :mod:`facespot.models` (importing
torch alone costs seconds at start-up).

Each model family registers one small spec function under its registry name, taking the
same keyword options as the family's constructor (the ``config`` stored in weights and ONNX
metadata)::

    @register_spec("faceboxes")
    def _faceboxes() -> ModelSpec:
        return ModelSpec("faceboxes", anchor_gen.faceboxes_anchors, InputNorm(...), BoxCoding("ssd", (0.1, 0.2)), ...)

``tests/test_spec.py`` builds every registered model and checks its spec against it
(attributes and anchors), so a spec can never drift from its model. A model name without a
spec still loads (:func:`facespot.runtime.onnx_meta.spec_from_metadata` then rebuilds the
model on torch's ``meta`` device), only slower.

This module also holds the classes a spec is made of (:class:`InputNorm`,
:class:`BoxCoding`), the shared decoder :func:`decode_outputs` (NumPy or torch) and the
metadata keys weights and ONNX files carry, so :mod:`facespot.models` re-exports them
rather than defining them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from facespot import anchors as anchor_gen
from facespot import boxes as B
from facespot.errors import FacespotError

META_MODEL = "facespot_model"
META_CONFIG = "config"
META_VERSION = "facespot_version"
"""Metadata keys of a weights file (safetensors header) and of an exported ONNX file."""


@dataclass(frozen=True)
class InputNorm:
    """How images are turned into the network's input tensor."""

    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # in 0..255 units, RGB order
    std: tuple[float, float, float] = (255.0, 255.0, 255.0)
    channel_order: str = "RGB"


@dataclass(frozen=True)
class BoxCoding:
    """How ``deltas`` relate to anchors: ``ssd`` (with variances) or ``grid`` (YOLO cells, a box
    centre reaching ``reach`` cells beyond its own: :func:`facespot.boxes.decode_grid`)."""

    kind: str = "ssd"
    variances: tuple[float, float] = B.DEFAULT_VARIANCES
    reach: float = 0.0


def decode_outputs(outputs: Sequence[Any], anchors: Any, coding: BoxCoding) -> tuple[Any, Any, Any | None]:
    """Dense network outputs -> ``(boxes xyxy normalised, scores, points or None)``.

    Works on NumPy (ONNX Runtime) and torch alike; no suppression is applied here.
    """
    deltas, logits = outputs[0], outputs[1]
    if coding.kind == "ssd":
        boxes = B.decode(deltas, anchors, coding.variances)
    elif coding.kind == "grid":
        boxes = B.decode_grid(deltas, anchors, coding.reach)
    else:
        raise ValueError(f"unknown box coding {coding.kind!r}")
    if hasattr(logits, "sigmoid"):  # a torch tensor
        scores = logits.sigmoid()
    else:
        with np.errstate(over="ignore"):  # exp(-x) overflows to inf for very negative logits: score 0, fine
            scores = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float32)))
    points = None
    if len(outputs) > 2 and outputs[2] is not None:
        points = B.decode_points(outputs[2], anchors, coding.variances[0])
    return boxes, scores, points


@dataclass(frozen=True)
class ModelSpec:
    """A detector's decoding facts, without weights (duck-compatible with ``FaceModel`` for the runtime).

    ``anchor_fn(height, width)`` returns ``(A, 4)`` normalised ``cxcywh`` anchors in the
    order of the network's outputs. ``extras`` holds any further family facts the runtime
    reads as attributes (Tiny Faces: ``templates``, ``template_scales``).
    """

    name: str
    anchor_fn: Callable[[int, int], np.ndarray]
    input_norm: InputNorm
    coding: BoxCoding
    num_keypoints: int = 0
    fixed_input_size: tuple[int, int] | None = None  # (height, width) where required
    train_input_size: tuple[int, int] = (640, 640)
    suppression: str = "hard"  # "hard" NMS or "blend" (blending NMS)
    config: dict[str, Any] = field(default_factory=dict)  # registry name + constructor options
    extras: dict[str, Any] = field(default_factory=dict)

    def anchors(self, height: int, width: int) -> np.ndarray:
        return np.asarray(self.anchor_fn(int(height), int(width)), dtype=np.float32)

    def __getattr__(self, key: str) -> Any:  # only called for attributes not found normally
        if key.startswith("__") or key == "extras":
            raise AttributeError(key)
        try:
            return self.extras[key]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} {self.name!r} has no attribute {key!r}") from None

    def preprocess(self, images_rgb_uint8: Any) -> Any:
        """``(B, H, W, 3)`` uint8 RGB -> normalised ``(B, 3, H, W)`` float32, as ``FaceModel.preprocess``.

        NumPy in, NumPy out; a torch tensor in gives a torch tensor out (for torch callers)."""
        is_torch = type(images_rgb_uint8).__module__.startswith("torch")
        arr = images_rgb_uint8.cpu().numpy() if is_torch else np.asarray(images_rgb_uint8)
        n = self.input_norm
        x = normalize(list(arr), n.mean, n.std, n.channel_order)
        if is_torch:
            import torch

            return torch.from_numpy(x)
        return x


def normalize(images_rgb: Sequence[np.ndarray], mean, std, channel_order: str = "RGB") -> np.ndarray:
    """Same-size ``HxWx3`` uint8 RGB images -> ``(B, 3, H, W)`` float32, as ``FaceModel.preprocess``.

    NumPy twin of the torch method, so the ONNX path needs no torch. One fused
    subtract-and-cast per channel plane straight into the output (about 10x faster than
    cast, subtract, transpose, copy), and it reads strided views (a BGR array seen as RGB)
    without copying them first.
    """
    b = len(images_rgb)
    h, w = images_rgb[0].shape[:2]
    out = np.empty((b, 3, h, w), np.float32)
    src = (2, 1, 0) if channel_order == "BGR" else (0, 1, 2)
    mean = np.asarray(mean, np.float32)
    inv = (1.0 / np.asarray(std, np.float64)).astype(np.float32)
    for i, img in enumerate(images_rgb):
        for c in range(3):
            np.subtract(img[:, :, src[c]], mean[c], out=out[i, c], dtype=np.float32)
            if inv[c] != 1.0:
                out[i, c] *= inv[c]
    return out


SpecFunction = Callable[..., ModelSpec]
_SPECS: dict[str, SpecFunction] = {}


def register_spec(name: str) -> Callable[[SpecFunction], SpecFunction]:
    """Decorator: ``model_spec(name, **options)`` calls the decorated function.

    The function takes the constructor's keyword options (same names and defaults) and
    returns a :class:`ModelSpec` whose ``name`` is ``name``."""

    def wrap(fn: SpecFunction) -> SpecFunction:
        if name in _SPECS:
            raise ValueError(f"model spec {name!r} registered twice")
        _SPECS[name] = fn
        return fn

    return wrap


def has_spec(name: str) -> bool:
    return name in _SPECS


def spec_names() -> list[str]:
    """Model names with a torch-free spec."""
    return sorted(_SPECS)


def model_spec(name: str, **options: Any) -> ModelSpec:
    """The spec of registry model ``name`` built with ``options`` (its saved config)."""
    if name not in _SPECS:
        raise FacespotError(f"no model spec for {name!r}; specs: {', '.join(spec_names())}")
    try:
        spec = _SPECS[name](**options)
    except TypeError as exc:  # an option the family does not take
        raise FacespotError(f"model {name!r}: {exc}") from None
    return replace(spec, name=name, config={"name": name, **dict(spec.config or options)})


# ---------------------------------------------------------------------- the families
#
# One entry per registry name; each mirrors its class in facespot/models/<family>.py
# (tests/test_spec.py checks that they agree). A new family adds one entry here.

_SSD = BoxCoding("ssd", (0.1, 0.2))
_IMAGENET = InputNorm(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))


@register_spec("faceboxes")
def _faceboxes() -> ModelSpec:
    return ModelSpec(
        "faceboxes", anchor_gen.faceboxes_anchors, InputNorm(mean=(123.0, 117.0, 104.0), std=(1.0, 1.0, 1.0)), _SSD,
        train_input_size=(1024, 1024),
    )  # fmt: skip


def _blazeface(variant: str, side: int, kernel_size: int) -> ModelSpec:
    return ModelSpec(
        f"blazeface_{variant}", lambda h, w: anchor_gen.blazeface_anchors(h, w, variant),
        InputNorm(mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5)), _SSD, num_keypoints=6,
        fixed_input_size=(side, side), train_input_size=(side, side), suppression="blend",
        config={"kernel_size": int(kernel_size)},
    )  # fmt: skip


@register_spec("blazeface_front")
def _blazeface_front(kernel_size: int = 5) -> ModelSpec:
    return _blazeface("front", 128, kernel_size)


@register_spec("blazeface_back")
def _blazeface_back(kernel_size: int = 5) -> ModelSpec:
    return _blazeface("back", 256, kernel_size)


@register_spec("tinyfaces")
def _tinyfaces(
    backbone: str = "resnet101", templates: Sequence[Sequence[float]] | None = None,
    template_scales: Sequence[float] | None = None, use_res5: bool = False,
) -> ModelSpec:  # fmt: skip
    if templates is None:  # weights and ONNX files always store them; the defaults live with the model
        raise FacespotError("tinyfaces: a spec needs the model's templates (they are in every saved config)")
    t = np.asarray(templates, dtype=np.float32)
    scales = np.asarray([1.0] * len(t) if template_scales is None else template_scales, dtype=np.float32)
    return ModelSpec(
        "tinyfaces", lambda h, w: anchor_gen.template_anchors(h, w, 8, t), _IMAGENET, BoxCoding("ssd", (1.0, 1.0)),
        train_input_size=(500, 500),
        config={"backbone": backbone, "templates": [list(map(float, x)) for x in templates],
                "template_scales": scales.tolist(), "use_res5": bool(use_res5)},
        extras={"templates": t, "template_scales": scales, "stride": 8},
    )  # fmt: skip


def _grid_stride(input_size: int, grid_size: int) -> int:
    if input_size < 1 or grid_size < 1 or input_size % grid_size:
        raise FacespotError(f"input_size {input_size} must be a positive multiple of grid_size {grid_size}")
    return input_size // grid_size


@register_spec("grid_mobilenetv2")
def _grid_mobilenetv2(
    alpha: float = 0.75, input_size: int = 224, grid_size: int = 7, upsample: bool = False, reach: float = 0.0
) -> ModelSpec:
    stride = _grid_stride(int(input_size), int(grid_size))
    return ModelSpec(
        "grid_mobilenetv2", lambda h, w: anchor_gen.stride_grid_cells(h, w, stride, 1),
        InputNorm(mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5)), BoxCoding("grid", reach=float(reach)),
        train_input_size=(int(input_size), int(input_size)),
        config={"alpha": float(alpha), "input_size": int(input_size), "grid_size": int(grid_size), "upsample": bool(upsample),
                "reach": float(reach)},
        extras={"stride": stride},
    )  # fmt: skip


@register_spec("yolo")
def _yolo(
    backbone: str = "resnet18", input_size: int = 448, grid_size: int = 7, boxes_per_cell: int = 2, head_channels: int = 256
) -> ModelSpec:
    stride, per_cell = _grid_stride(int(input_size), int(grid_size)), int(boxes_per_cell)
    return ModelSpec(
        "yolo", lambda h, w: anchor_gen.stride_grid_cells(h, w, stride, per_cell), _IMAGENET, BoxCoding("grid"),
        train_input_size=(int(input_size), int(input_size)),
        config={"backbone": backbone, "input_size": int(input_size), "grid_size": int(grid_size),
                "boxes_per_cell": per_cell, "head_channels": int(head_channels)},
        extras={"stride": stride, "boxes_per_cell": per_cell},
    )  # fmt: skip


def _spotnet(name: str, num_keypoints: int, head_layers: int) -> ModelSpec:
    return ModelSpec(
        name, lambda h, w: anchor_gen.pyramid_anchors(h, w), InputNorm(mean=(127.5, 127.5, 127.5), std=(128.0, 128.0, 128.0)),
        _SSD, num_keypoints=int(num_keypoints), train_input_size=(640, 640),
        config={"num_keypoints": int(num_keypoints), "head_layers": int(head_layers)},
        extras={"score_groups": lambda h, w: anchor_gen.pyramid_groups(h, w)},
    )  # fmt: skip


@register_spec("spotnet_n")
def _spotnet_n(num_keypoints: int = 0, head_layers: int = 2) -> ModelSpec:
    return _spotnet("spotnet_n", num_keypoints, head_layers)


@register_spec("spotnet_s")
def _spotnet_s(num_keypoints: int = 0, head_layers: int = 2) -> ModelSpec:
    return _spotnet("spotnet_s", num_keypoints, head_layers)
