"""``facespot.load(...)`` -> :class:`Detector`; ``detector(image)`` -> ``list[Face]``.

The whole user-facing detection path: image in (array or file), faces out in original-image
pixels. Pre- and post-processing are NumPy (:mod:`.preprocess`, :mod:`.postprocess`); only
the network runs in a backend (:mod:`.backends`), so ONNX Runtime and PyTorch give the same
faces from the same code.

Colour order: arrays are taken as **BGR** by default, because most arrays in the wild come
from OpenCV (``cv2.imread``, ``VideoCapture.read``); pass ``rgb=True`` (to :func:`load` or
per call) for RGB arrays (PIL, imageio, matplotlib). File paths are always decoded correctly
(:func:`facespot.images.read_image`), whatever the flag. Grayscale (``HxW`` or ``HxWx1``),
alpha (``HxWx4``, dropped) and 16-bit / float arrays are converted as ``read_image`` does.

Model choice (``model=``):

* ``"default"``: the packaged weights (:mod:`.packaged`, hash-checked; a build without them
  raises a :class:`FacespotError` saying how to train or provide weights;
* a path to a facespot ``.safetensors`` weights file, or to an ``.onnx`` file written by
  ``facespot export`` (its facespot metadata travels inside the file);
* a registry name (``"faceboxes"``, ...): an **untrained** network whose boxes are random.
  Refused unless ``untrained=True`` -- it is for timing and tests only, and a silent random
  detector is worse than an error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from facespot.errors import FacespotError
from facespot.images import DEFAULT_MAX_PIXELS, to_uint8, read_image
from facespot.runtime import postprocess as post
from facespot.runtime.preprocess import View, normalize, plan_view, render_view, tile_crops


@dataclass
class Candidates:
    """Raw candidates of one image (:meth:`Detector.candidates`), before NMS."""

    boxes: np.ndarray  # (N, 4) xyxy in image pixels, clipped to the image
    logits: np.ndarray  # (N,) face logits (score = sigmoid)
    anchors: np.ndarray  # (N,) index of each candidate's anchor on the canvas
    canvas: tuple[int, int]  # (height, width) of the canvas the network saw


@dataclass
class Face:
    """One detected face, in pixels of the image that was passed in.

    box: ``(x1, y1, x2, y2)``; score: face probability; keypoints: ``(K, 2)`` ``(x, y)`` for
    keypoint models (BlazeFace: 6, in the order its training data gives them), else None.
    """

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray | None = None

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def to_dict(self, decimals: int = 2) -> dict[str, Any]:
        """JSON-ready form (used by ``facespot detect --json``)."""
        out: dict[str, Any] = {"box": [round(float(v), decimals) for v in self.box], "score": round(float(self.score), 5)}
        out["keypoints"] = None if self.keypoints is None else np.round(self.keypoints.astype(float), decimals).tolist()
        return out


@dataclass
class DetectorOptions(post.PostprocessOptions):
    """Everything that shapes a detection run besides the model and backend.

    resize: ``"auto"``, ``"native"`` or a long side in pixels (see :mod:`.preprocess`).
    max_side: cap on the long side for native-size inference (None: no cap).
    min_side: with ``resize="auto"``, smaller images are upscaled to this long side (None: never),
        by at most ``max_upscale`` times (None: no cap).
    mode: ``"single"`` (one pass) or ``"multiscale"`` for tiny faces in large images: Tiny
        Faces runs its image pyramid (``pyramid_scales``); other models add overlapping
        tiles (``tile_size`` original pixels, ``tile_overlap``), each enlarged by
        ``tile_zoom`` (fixed-size models: letterboxed to their input), to the full-image pass.
    max_pixels: refuse larger images (decompression-bomb guard).
    max_batch: most canvases per network call in :meth:`Detector.batch`.
    """

    resize: str | int = "auto"
    max_side: int | None = 2048
    min_side: int | None = 640
    max_upscale: float | None = 4.0
    mode: str = "single"
    tile_size: int | None = None
    tile_overlap: float = 0.25
    tile_zoom: float = 2.0
    pyramid_scales: Sequence[float] | str = "auto"
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_batch: int = 16

    def check(self) -> None:
        super().check()
        if self.mode not in ("single", "multiscale"):
            raise FacespotError(f"mode must be 'single' or 'multiscale', got {self.mode!r}")
        if self.max_side is not None and self.max_side < 16:
            raise FacespotError(f"max_side must be at least 16, got {self.max_side}")
        if not self.tile_zoom > 0:
            raise FacespotError(f"tile_zoom must be positive, got {self.tile_zoom}")
        if self.max_upscale is not None and not self.max_upscale >= 1.0:
            raise FacespotError(f"max_upscale must be at least 1, got {self.max_upscale}")
        if self.min_side is not None and self.min_side < 1:
            raise FacespotError(f"min_side must be at least 1 (None: never upscale), got {self.min_side}")
        if not self.max_pixels >= 1:
            raise FacespotError(f"max_pixels must be at least 1, got {self.max_pixels}")


def to_rgb_array(image: Any, rgb: bool, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Path / array / ``__array__`` object -> ``HxWx3`` uint8 RGB (BGR arrays unless ``rgb``)."""
    if image is None:
        raise FacespotError("expected an image (a path, an HxWxC array or a PIL image), got None")
    if isinstance(image, (str, Path)):
        return read_image(image, max_pixels=max_pixels)
    if type(image).__module__.startswith("PIL."):  # a PIL image knows its colours: always RGB
        rgb = True
        if getattr(image, "mode", "RGB") not in ("L", "RGB", "RGBA", "I;16"):
            image = image.convert("RGB")  # palette, CMYK, YCbCr, ...
    try:
        arr = np.asarray(image)
    except Exception as exc:
        raise FacespotError(f"cannot convert a {type(image).__name__} to an image array ({exc})") from None
    if arr.dtype == object or arr.ndim not in (2, 3):
        raise FacespotError(f"expected an HxW or HxWxC image array, got shape {arr.shape} of {arr.dtype}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise FacespotError(f"image has zero size {arr.shape[1]}x{arr.shape[0]}")
    if arr.shape[0] * arr.shape[1] > max_pixels:
        raise FacespotError(
            f"image is {arr.shape[1]}x{arr.shape[0]} = {arr.shape[0] * arr.shape[1]} pixels, over the limit of {max_pixels}"
        )
    if arr.dtype == np.uint16 and arr.size and 0 < int(arr.max()) <= 255:
        raise FacespotError(
            f"uint16 image with values only up to {int(arr.max())}: 8-bit data in a 16-bit array, or a nearly "
            "black 16-bit image? Pass 8-bit data as uint8 (or any integer type holding 0..255), 16-bit data scaled to 0..65535"
        )
    arr = to_uint8(arr, "image")  # integers by their value range, floats in 0..1; else a clear error
    if arr.ndim == 2:
        arr = arr[:, :, None]
    c = arr.shape[2]
    if c == 1:
        return np.ascontiguousarray(np.repeat(arr, 3, axis=2))
    if c == 2:  # gray + alpha
        return np.ascontiguousarray(np.repeat(arr[:, :, :1], 3, axis=2))
    if c not in (3, 4):
        raise FacespotError(f"expected 1, 3 or 4 channels, got {c} (shape {arr.shape})")
    arr = arr[:, :, :3]
    return arr if rgb else arr[:, :, ::-1]  # a view: preprocessing reads it without a copy


class Detector:
    """A model + backend + options; call it on images.

    Build with :func:`load` (or :meth:`from_model`). ``last_timing`` holds the seconds the
    last call spent in preprocessing, the network and decoding + NMS.
    """

    def __init__(
        self,
        model: Any,
        backend: Any,
        options: DetectorOptions | None = None,
        rgb: bool = False,
        source: str = "",
        trained: bool = True,
    ) -> None:
        self.model = model
        self.backend = backend
        self.options = options or DetectorOptions()
        self.options.check()
        self.rgb = bool(rgb)
        self.source = source
        self.trained = trained
        fixed = getattr(model, "fixed_input_size", None)
        self.fixed_input_size = tuple(fixed) if fixed is not None else None
        grid = getattr(getattr(model, "coding", None), "kind", "ssd") == "grid"
        self.square_size = int(max(model.train_input_size)) if grid and fixed is None else None
        self.num_keypoints = int(getattr(model, "num_keypoints", 0) or 0)
        self.suppression = getattr(model, "suppression", "hard")
        self._anchor_cache: dict[tuple[int, int], np.ndarray] = {}
        self.last_timing: dict[str, float] = {}
        # called as (views done, views in this call) while a call runs: one huge image with
        # mode="multiscale" is thousands of tiles, minutes of work that a per-image count cannot show
        self.on_views: Callable[[int, int], None] | None = None
        if self.fixed_input_size is not None and self.options.resize not in ("auto", "native"):
            raise FacespotError(
                f"model {self.model_name!r} has a fixed {fixed[1]}x{fixed[0]} input; resize must be 'auto' "
                f"(got {self.options.resize!r})"
            )

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_model(
        cls,
        model: Any,
        backend: str = "onnxruntime",
        threads: int | None = None,
        rgb: bool = False,
        source: str = "",
        trained: bool = True,
        **options: Any,
    ) -> "Detector":
        """Wrap a torch ``FaceModel`` (exported to ONNX in memory for ``onnxruntime``)."""
        from facespot.runtime.backends import OnnxRuntimeBackend, TorchBackend, export_to_bytes
        from facespot.runtime.onnx_meta import model_metadata

        model = model.eval()
        if backend == "torch":
            runner = TorchBackend(model, threads)
        elif backend == "onnxruntime":
            runner = OnnxRuntimeBackend(export_to_bytes(model, model_metadata(model)), threads, source=source)
        else:
            raise FacespotError(f"unknown backend {backend!r}; use 'onnxruntime' or 'torch'")
        return cls(model, runner, make_options(options), rgb=rgb, source=source, trained=trained)

    @property
    def model_name(self) -> str:
        return str(getattr(self.model, "config", {}).get("name") or getattr(self.model, "name", "model"))

    def __repr__(self) -> str:
        return (
            f"Detector(model={self.model_name!r}, backend={self.backend.name!r}, threads={self.backend.threads}, "
            f"source={self.source!r}{'' if self.trained else ', UNTRAINED'})"
        )

    # ------------------------------------------------------------------ detection

    def __call__(self, image: Any, rgb: bool | None = None) -> list[Face]:
        """Faces in one image (array, path, or anything with ``__array__``)."""
        return self.batch([image], rgb=rgb)[0]

    def batch(self, images: Iterable[Any], rgb: bool | None = None) -> list[list[Face]]:
        """Faces for several images (a list, tuple or other iterable of images, or an
        ``(N, H, W, C)`` array); inputs of the same canvas size share one network call."""
        t0 = time.perf_counter()
        flag = self.rgb if rgb is None else bool(rgb)
        if images is None or isinstance(images, (str, Path, bytes)) or type(images).__module__.startswith("PIL."):
            raise FacespotError(
                f"batch() takes a list of images, got {type(images).__name__}; for one image call detector(image)"
            )
        if isinstance(images, np.ndarray) and images.ndim != 4:
            raise FacespotError(
                f"batch() takes a list of images or an (N, H, W, C) array, got an array of shape {images.shape}; "
                "for one image call detector(image)"
            )
        try:
            items = list(images)
        except TypeError:
            raise FacespotError(f"batch() takes a list of images, got {type(images).__name__}") from None
        arrays = [to_rgb_array(im, flag, self.options.max_pixels) for im in items]
        timing = {"preprocess": time.perf_counter() - t0, "network": 0.0, "postprocess": 0.0}
        if self.options.mode == "multiscale" and self.model_name == "tinyfaces":
            results = [self._pyramid(a, timing) for a in arrays]
        else:
            results = self._detect_views(arrays, timing)
        self.last_timing = timing
        return results

    def candidates(self, image: Any, rgb: bool | None = None) -> "Candidates":
        """Every candidate of one image above the score threshold (capped at ``pre_nms_top_k``),
        before NMS, as ``facespot detect`` sees the image (its resize policy, the whole image in
        one view): what shipping-time calibration chooses score offsets and thresholds from."""
        flag = self.rgb if rgb is None else bool(rgb)
        img = to_rgb_array(image, flag, self.options.max_pixels)
        h, w = img.shape[:2]
        view = self._views(h, w)[0]
        out = self.run_network(self._normalize([render_view(img, view)]))
        logits = np.asarray(out[1][0], np.float32).reshape(-1)
        idx = post.candidate_indices(logits, self.options)
        anchors = self.anchors(view.canvas_h, view.canvas_w)
        boxes, _, _ = post.decode_outputs((np.asarray(out[0][0], np.float32)[idx], logits[idx], None), anchors[idx], self.model.coding)
        boxes = view.to_image(np.asarray(boxes, np.float32))
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        return Candidates(boxes, logits[idx], idx, (view.canvas_h, view.canvas_w))

    def _views(self, height: int, width: int) -> list[View]:
        o = self.options
        full = (0, 0, width, height)
        views = [plan_view(full, o.resize, self.fixed_input_size, self.square_size, o.max_side, o.min_side, o.max_upscale)]
        if o.mode != "multiscale":
            return views
        if o.tile_size is not None:
            tile = int(o.tile_size)
        elif self.fixed_input_size is not None:
            tile = 2 * max(self.fixed_input_size)
        elif self.square_size is not None:
            tile = self.square_size
        else:
            tile = 320
        if tile >= max(width, height):
            return views  # nothing to gain: the image fits in one tile
        for crop in tile_crops(width, height, tile, o.tile_overlap):
            if self.fixed_input_size is not None:
                views.append(plan_view(crop, "auto", self.fixed_input_size, None, None))
            else:
                target = max(16, int(round(max(crop[2], crop[3]) * o.tile_zoom)))
                views.append(plan_view(crop, target, None, self.square_size, None))
        return views

    def anchors(self, height: int, width: int) -> np.ndarray:
        """The model's anchors for a canvas size, cached (video frames repeat sizes)."""
        key = (int(height), int(width))
        a = self._anchor_cache.get(key)
        if a is None:
            a = np.asarray(self.model.anchors(*key), dtype=np.float32)
            if len(self._anchor_cache) > 64:
                self._anchor_cache.clear()
            self._anchor_cache[key] = a
        return a

    def run_network(self, x: np.ndarray) -> list[np.ndarray]:
        """Normalised ``(B, 3, H, W)`` -> dense outputs; checks the anchor count."""
        out = self.backend.run(x)
        n_anchors = len(self.anchors(x.shape[2], x.shape[3]))
        where = f"{self.source or self.model_name}: the network"
        if len(out) >= 2 and out[1].ndim >= 2 and out[1].shape[1] != n_anchors:
            raise FacespotError(
                f"{where} gave {out[1].shape[1]} predictions for a "
                f"{x.shape[3]}x{x.shape[2]} input but the model defines {n_anchors} anchors (wrong file for this model?)"
            )
        problem = _output_problem(out, x.shape[0], n_anchors, self.num_keypoints)
        if problem:  # decoding these would fail deep inside, or silently find nothing
            raise FacespotError(f"{where}'s outputs do not fit the {self.model_name!r} model: {problem} (wrong file for this model?)")
        return out

    def _normalize(self, canvases: list[np.ndarray]) -> np.ndarray:
        n = self.model.input_norm
        return normalize(canvases, n.mean, n.std, n.channel_order)

    def _detect_views(self, arrays: list[np.ndarray], timing: dict[str, float]) -> list[list[Face]]:
        o = self.options
        t = time.perf_counter()
        jobs: list[tuple[int, View, np.ndarray]] = []
        for i, img in enumerate(arrays):
            for view in self._views(*img.shape[:2]):
                jobs.append((i, view, render_view(img, view)))
        groups: dict[tuple[int, int], list[int]] = {}
        for j, (_, view, _) in enumerate(jobs):
            groups.setdefault((view.canvas_h, view.canvas_w), []).append(j)
        timing["preprocess"] += time.perf_counter() - t
        per_image: list[list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]] = [[] for _ in arrays]
        done = 0
        for (ch, cw), members in groups.items():
            for start in range(0, len(members), o.max_batch):
                chunk = members[start : start + o.max_batch]
                t = time.perf_counter()
                x = self._normalize([jobs[j][2] for j in chunk])
                t1 = time.perf_counter()
                out = self.run_network(x)
                t2 = time.perf_counter()
                anchors = self.anchors(ch, cw)
                for b, j in enumerate(chunk):
                    i, view, _ = jobs[j]
                    h, w = arrays[i].shape[:2]
                    one = [o_[b] for o_ in out]
                    per_image[i].append(post.ViewFaces(*self._view_faces(one, anchors, view, w, h), _tile_crop(view, w, h)))
                t3 = time.perf_counter()
                timing["preprocess"] += t1 - t
                timing["network"] += t2 - t1
                timing["postprocess"] += t3 - t2
                done += len(chunk)
                if self.on_views is not None:
                    self.on_views(done, len(jobs))
        t = time.perf_counter()
        results = [self._merge(parts, *arrays[i].shape[1::-1]) for i, parts in enumerate(per_image)]
        timing["postprocess"] += time.perf_counter() - t
        return results

    def _view_faces(self, outputs: list[np.ndarray], anchors: np.ndarray, view: View, width: int, height: int):
        o = self.options
        boxes, scores, pts = post.select_candidates(outputs, anchors, self.model.coding, o)
        boxes = view.to_image(boxes)
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0.0, width)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0.0, height)
        if pts is not None:
            pts = view.to_image(pts.reshape(len(pts), 2 * pts.shape[1])).reshape(pts.shape)  # no -1: may be empty
        boxes, scores, pts = post.drop_small(boxes, scores, pts, o.min_face_size)
        return post.suppress(boxes, scores, pts, self.suppression, o.iou_threshold, o.max_faces)

    def _merge(self, parts: list[post.ViewFaces], width: int, height: int) -> list[Face]:
        """One view: its faces. Several (tiles): merged across the seams (:func:`.postprocess.merge_views`)."""
        if not parts:
            return []
        if len(parts) == 1:
            boxes, scores, pts = parts[0].boxes, parts[0].scores, parts[0].points
        else:
            if not (self.num_keypoints and all(p.points is not None for p in parts)):
                parts = [post.ViewFaces(p.boxes, p.scores, None, p.crop) for p in parts]
            o = self.options
            boxes, scores, pts = post.merge_views(parts, width, height, self.suppression, o.iou_threshold, o.max_faces)
        boxes = np.asarray(boxes).reshape(-1, 4)
        if pts is not None and self.num_keypoints:
            pts = np.asarray(pts).reshape(-1, self.num_keypoints, 2)
        else:
            pts = None
        return [
            Face(tuple(float(v) for v in boxes[k]), float(scores[k]), None if pts is None else pts[k].astype(np.float32))
            for k in range(len(boxes))
        ]

    def _pyramid(self, img: np.ndarray, timing: dict[str, float]) -> list[Face]:
        """Tiny Faces' own multi-scale pass (:func:`facespot.models.tinyfaces.detect_pyramid`)."""
        from facespot.models.tinyfaces import detect_pyramid

        o = self.options
        t = time.perf_counter()
        net = [0.0]

        def forward(x: np.ndarray) -> list[np.ndarray]:
            t0 = time.perf_counter()
            out = self.run_network(x)
            net[0] += time.perf_counter() - t0
            return out

        h, w = img.shape[:2]
        det = detect_pyramid(
            self.model, img, scales=o.pyramid_scales, score_threshold=o.score_threshold,
            iou_threshold=o.iou_threshold, max_side=o.max_side or 3000, pre_nms_top_k=o.pre_nms_top_k,
            max_detections=o.max_faces, forward=forward,
        )  # fmt: skip
        boxes = det.boxes * np.array([w, h, w, h], np.float32)
        boxes, scores, _ = post.drop_small(boxes, det.scores, None, o.min_face_size)
        timing["network"] += net[0]
        timing["postprocess"] += time.perf_counter() - t - net[0]
        return [Face(tuple(float(v) for v in boxes[k]), float(scores[k])) for k in range(len(boxes))]


def _output_problem(out: list[np.ndarray], batch: int, n_anchors: int, num_keypoints: int) -> str | None:
    """What is wrong with a network's dense outputs for decoding, or None: box deltas
    ``(B, N, 4)``, face logits ``(B, N)`` and, for keypoint models, points ``(B, N, K, 2)``."""
    wanted = ["box deltas (B, N, 4)", "face logits (B, N)"] + (["keypoints (B, N, K, 2)"] if num_keypoints else [])
    if len(out) < len(wanted):
        return f"{len(out)} output(s), expected {len(wanted)}: {', '.join(wanted)}"
    shapes = [tuple(np.shape(o)) for o in out[: len(wanted)]]
    fits = [shapes[0] == (batch, n_anchors, 4), shapes[1] == (batch, n_anchors)]
    if num_keypoints:
        fits.append(shapes[2][:2] == (batch, n_anchors) and int(np.prod(shapes[2][2:])) == 2 * num_keypoints)
    bad = [f"{w} is {s}" for w, s, ok in zip(wanted, shapes, fits) if not ok]
    return f"{'; '.join(bad)} with B={batch}, N={n_anchors}, K={num_keypoints}" if bad else None


def _tile_crop(view: View, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The view's crop when it is a tile (part of the image), None for a whole-image pass."""
    return None if tuple(view.crop) == (0, 0, width, height) else tuple(int(v) for v in view.crop)


def make_options(options: dict[str, Any]) -> DetectorOptions:
    """Keyword options -> :class:`DetectorOptions`, naming any unknown keyword."""
    known = {f.name for f in fields(DetectorOptions)}
    aliases = {"threshold": "score_threshold", "nms_iou": "iou_threshold", "min_size": "min_face_size"}
    clean: dict[str, Any] = {}
    for key, value in options.items():
        key = aliases.get(key, key)
        if key not in known:
            raise FacespotError(f"unknown detector option {key!r}; options: {', '.join(sorted(known | set(aliases)))}")
        clean[key] = value
    opts = DetectorOptions(**clean)
    opts.check()
    return opts


# ---------------------------------------------------------------------- load


def _registry_names() -> list[str]:
    from facespot.models import available  # imports torch: only for registry names and errors

    return available()


def _looks_like_path(spec: str) -> bool:
    return spec.lower().endswith((".safetensors", ".onnx")) or "/" in spec or "\\" in spec or Path(spec).is_file()


def check_model_argument(model: str | Path) -> None:
    """The cheap part of :func:`load`'s checks, for commands that validate before working:
    a weights path must exist (packaged and registry names are checked by ``load``)."""
    spec = str(model)
    if spec == "default":
        return
    from facespot.runtime.packaged import packaged_names

    if spec in packaged_names():
        return
    if (isinstance(model, Path) or _looks_like_path(spec)) and not Path(spec).is_file():
        raise FacespotError(f"{spec}: weights file not found (expected a facespot .safetensors or exported .onnx file)")


def load(
    model: str | Path = "default",
    backend: str = "onnxruntime",
    threads: int | None = None,
    *,
    untrained: bool = False,
    model_options: dict[str, Any] | None = None,
    rgb: bool = False,
    **options: Any,
) -> Detector:
    """Build a :class:`Detector`.

    Parameters
    ----------
    model : ``"default"`` (packaged weights), a ``.safetensors`` / ``.onnx`` path, or a registry
        name together with ``untrained=True`` (random weights, for timing and tests).
    backend : ``"onnxruntime"`` (default, CPU) or ``"torch"``.
    threads : intra-op threads (default: physical cores for ONNX Runtime; torch's own default).
    model_options : constructor options for a registry name (e.g. ``{"backbone": "resnet18"}``).
    rgb : treat arrays as RGB instead of OpenCV's BGR.
    **options : :class:`DetectorOptions` fields (``score_threshold``, ``iou_threshold``,
        ``max_faces``, ``min_face_size``, ``resize``, ``max_side``, ``mode``, ...).
    """
    # torch and facespot.models are imported only on the paths that need them (a .safetensors
    # file, the torch backend, a registry name): the ONNX Runtime path stays torch-free
    from facespot.runtime.packaged import packaged_model_name, packaged_names, resolve_packaged

    if backend not in ("onnxruntime", "torch"):
        raise FacespotError(f"unknown backend {backend!r}; use 'onnxruntime' or 'torch'")
    if threads is not None and int(threads) < 1:
        raise FacespotError(f"threads must be at least 1, got {threads}")
    spec = str(model)
    if spec == "default" or (not _looks_like_path(spec) and spec in packaged_names()):
        path: Path | None = resolve_packaged(spec, prefer_onnx=backend == "onnxruntime")
        det = load(path, backend, threads, untrained=untrained, model_options=model_options, rgb=rgb, **options)
        declared = packaged_model_name(spec)
        if declared is not None and det.model_name != declared:
            raise FacespotError(
                f"{path}: packaged entry {spec!r} declares model {declared!r} but the file holds "
                f"{det.model_name!r}; the package's weights were mixed up -- reinstall facespot"
            )
        return det
    elif isinstance(model, Path) or _looks_like_path(spec):
        path = Path(spec)
        if not path.is_file():
            raise FacespotError(f"{path}: weights file not found (expected a facespot .safetensors or exported .onnx file)")
    elif spec in _registry_names():
        if not untrained:
            raise FacespotError(
                f"{spec!r} is a model architecture, not trained weights: its boxes would be random. Pass a "
                f"weights file (.safetensors or exported .onnx), or untrained=True (CLI: --untrained) to run "
                f"the untrained network for timing or tests"
            )
        from facespot.models import build

        net = build(spec, **(model_options or {}))
        return Detector.from_model(net, backend, threads, rgb=rgb, source=f"{spec} (untrained)", trained=False, **options)
    else:
        known = ", ".join(["default"] + _registry_names())
        raise FacespotError(f"model {spec!r} is neither a weights file nor a known name; known names: {known}")

    if path.suffix.lower() == ".onnx":
        if backend != "onnxruntime":
            raise FacespotError(f"{path}: an .onnx file runs only with backend 'onnxruntime'; use the .safetensors weights for 'torch'")
        from facespot.runtime.backends import OnnxRuntimeBackend
        from facespot.runtime.onnx_meta import spec_from_metadata

        opts = make_options(options)  # bad options fail before the session is built
        runner = OnnxRuntimeBackend(path, threads, source=str(path))
        net = spec_from_metadata(runner.metadata, str(path))
        return Detector(net, runner, opts, rgb=rgb, source=str(path))
    from facespot.models.io import load_model

    make_options(options)  # bad options fail before the weights load
    net = load_model(path)
    return Detector.from_model(net, backend, threads, rgb=rgb, source=str(path), **options)
