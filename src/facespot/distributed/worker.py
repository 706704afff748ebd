"""What runs inside each Ray actor: one :class:`~facespot.runtime.detector.Detector` (one
ONNX Runtime session) applied to batches of rows that Ray Data hands it.

Nothing here schedules anything: Ray Data owns the actor pool, batching, retries and
back-pressure; :class:`DetectWorker` is the stateful function of one
``Dataset.map_batches`` stage. Rows come in three shapes (:class:`Job.mode`):

* ``"column"`` -- any dataset (:func:`facespot.distributed.detect_dataset`): an ``image``
  column (arrays) or a ``path`` column (files read here); the input columns come back with
  ``faces`` and ``error`` added;
* ``"files"`` -- ``facespot detect|blur DIR --engine ray``: rows ``{index, path}``; each file
  is read through :class:`facespot.runtime.sources.Source`, exactly as the local run reads it,
  so a corrupt file becomes the same :class:`~facespot.runtime.sources.Failure` message;
* ``"video"`` -- rows ``{start, stop}``: a segment of one video file, decoded here after a
  seek, so the decoding of an hours-long video is spread over the pool too.

The network runs one image at a time (``detector(image)``, as the local run does), so the
faces are the local run's faces bit for bit; ``batch_size`` only sets how many images share
one actor call. Annotated / anonymised images are written here with the local writers
(:func:`~facespot.runtime.sinks.write_image`; a video found inside a folder: its own
:class:`~facespot.runtime.sinks.VideoSink`), so encoding scales with the pool; the frames of a
video SOURCE, whose segments run on many actors, come back to the driver, which owns its one
``VideoSink``.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from facespot.errors import FacespotError

INT_COLUMNS = ("index", "width", "height")
ROW_COLUMNS = ("index", "name", "path", "width", "height", "in_video", "faces", "error", "fatal", "written", "note", "ended",
               "detected", "signature")  # fmt: skip
ROW_DEFAULTS: dict[str, Any] = {"index": -1, "name": "", "path": "", "width": 0, "height": 0, "in_video": False, "faces": [],
                                "error": "", "fatal": "", "written": "", "note": "", "ended": "", "detected": True,
                                "signature": b""}  # fmt: skip
"""A result row (modes "files" and "video"): a frame's faces, or a failure (``error``: reported,
the job goes on), an output that cannot be written (``fatal``: the job stops, as locally), a
note (a video in a folder that ended early) or the end of a short video segment (``ended``).
Video frames also carry ``detected`` (False: a frame blur's tracking skips, ``--detect-every``)
and ``signature`` (the shot-change thumbnail, so that the driver can track faces across
segments: :mod:`facespot.runtime.tracking`)."""


def faces_type():
    """The Arrow type of the ``faces`` column: ``list<struct<box, score, keypoints>>``.

    Explicit, so a block whose images have no faces (or no keypoints) has the same schema
    as every other block. Values are unrounded (:meth:`Face.to_dict` rounds for JSON).
    """
    import pyarrow as pa

    face = pa.struct(
        [("box", pa.list_(pa.float64(), 4)), ("score", pa.float64()), ("keypoints", pa.list_(pa.list_(pa.float64(), 2)))]
    )
    return pa.list_(face)


def face_record(face) -> dict[str, Any]:
    """A :class:`Face` as a plain dict with full precision (float32 keypoints are exact in float64)."""
    kp = None if face.keypoints is None else np.asarray(face.keypoints, np.float64).reshape(-1, 2).tolist()
    return {"box": [float(v) for v in face.box], "score": float(face.score), "keypoints": kp}


def face_from_record(rec) -> Any:
    """Inverse of :func:`face_record` (accepts Arrow's NumPy forms too): the local run's :class:`Face`."""
    from facespot.runtime.detector import Face

    kp = rec["keypoints"]
    if kp is not None:
        kp = np.array([np.asarray(p, np.float64) for p in kp], np.float64).reshape(-1, 2).astype(np.float32)
    return Face(tuple(float(v) for v in rec["box"]), float(rec["score"]), kp)


@dataclass
class DetectorSpec:
    """How each actor builds its detector: ``build(model) -> Detector``.

    ``build`` is a picklable callable (a ``functools.partial`` of :func:`facespot.load`, or a
    :class:`~facespot.distributed.run.ActorDetector` holding a run's settings). ``model_data``
    (a one-item list holding a Ray object reference to the bytes of a model *file*) lets nodes
    without the driver's file system load a user's ``.onnx`` / ``.safetensors``: the actor
    writes it to a private temporary file, loads it and deletes the file.
    """

    build: Callable[[str], Any]
    model: str = "default"
    model_data: list | None = None
    threads: int = 1

    def make(self):
        if not self.model_data:
            return self.build(self.model)
        import ray

        data = ray.get(self.model_data[0])
        with tempfile.TemporaryDirectory(prefix="facespot-model-") as tmp:
            path = Path(tmp) / Path(self.model).name
            path.write_bytes(data)
            return self.build(str(path))


@dataclass
class Job:
    """What one run asks of every actor (picklable; built on the driver)."""

    mode: str  # "column", "files" or "video"
    column: str = "path"  # mode "column": a column of image arrays or of file paths
    rgb: bool = True  # mode "column", image arrays: RGB (read_images) or BGR (OpenCV)
    source_kind: str = "folder"  # "image", "folder" or "video" (the local run's Source.kind)
    spec: str = ""  # the SOURCE argument
    root: str | None = None  # folder (or the image's parent): names are relative to it
    out: str | None = None  # --save / --out
    handle: Callable | None = None  # the local run's handle: DetectOutputs(draw=True) or BlurOutputs
    max_pixels: int | None = None
    video_size: tuple[int, int] | None = None  # (w, h) of the first frame: every frame is resized to it
    video_frames: int | None = None  # announced frame count, for the "ended early" message
    max_frames: int | None = None  # --max-frames, for videos inside a folder
    return_frames: bool = False  # mode "video" with an output: frames go back to the driver's VideoSink
    raw_frames: bool = False  # mode "video": frames go back undrawn (blur: the driver tracks faces across segments)
    every: int = 1  # mode "video": detect on frames whose index is a multiple of this (blur --detect-every)
    version: str = ""  # the driver's facespot version (checked: every node must run the same)


def _quiet_threads(threads: int) -> None:
    """An actor owns ``threads`` CPUs: keep OpenCV's own pool inside them too."""
    try:
        import cv2

        cv2.setNumThreads(max(1, int(threads)))
    except Exception:  # pragma: no cover - OpenCV without threading support
        pass


class DetectWorker:
    """The stateful UDF of the ``map_batches`` stage: built once per actor, called per batch."""

    def __init__(self, spec: DetectorSpec, job: Job) -> None:
        import facespot

        if job.version and job.version != facespot.__version__:
            raise FacespotError(
                f"this Ray node runs facespot {facespot.__version__} but the driver runs {job.version}; "
                "install the same facespot on every node"
            )
        _quiet_threads(spec.threads)
        with contextlib.redirect_stderr(io.StringIO()):  # the driver already printed any model note
            self.detector = spec.make()
        self.job = job
        self.out = Path(job.out) if job.out else None

    # ------------------------------------------------------------------ entry

    def __call__(self, batch: dict[str, np.ndarray]) -> Iterator[dict[str, Any]]:
        if self.job.mode == "column":
            yield self._column(batch)
        elif self.job.mode == "files":
            yield from self._files(batch)
        else:
            for start, stop in zip(batch["start"], batch["stop"]):
                yield from self._segment(int(start), int(stop))

    # ------------------------------------------------------------------ helpers

    def _detect(self, image: np.ndarray, rgb: bool = True) -> list:
        return self.detector(image, rgb=rgb)

    def _columns(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import pyarrow as pa

        out: dict[str, Any] = {}
        for name in self.columns:
            values = [r.get(name, ROW_DEFAULTS.get(name)) for r in rows]
            if name == "faces":
                out[name] = pa.array(values, type=faces_type())
            elif name == "frame":
                out[name] = np.stack(values)
            elif name in INT_COLUMNS:
                out[name] = np.array(values, dtype=np.int64)
            elif name in ("in_video", "detected"):
                out[name] = np.array(values, dtype=bool)
            else:
                out[name] = np.array(values, dtype=object)
        return out

    @property
    def columns(self) -> tuple[str, ...]:
        return ROW_COLUMNS + (("frame",) if self.job.return_frames else ())

    def _row(self, frame) -> tuple[dict[str, Any], list | None]:
        """Detect faces in one frame: ``(row, faces)``; faces None when detection failed."""
        h, w = frame.image.shape[:2]
        row = {"index": int(frame.index), "name": frame.name, "path": str(frame.path or ""), "width": w, "height": h,
               "in_video": bool(frame.in_video)}  # fmt: skip
        try:
            faces = self._detect(frame.image)
        except FacespotError as exc:
            row["error"] = str(exc)
            return row, None
        except Exception as exc:  # one odd image must not stop a million-image job
            row["error"] = f"{frame.path or frame.name}: detection failed ({type(exc).__name__}: {exc})"
            return row, None
        row["faces"] = [face_record(f) for f in faces]
        return row, faces

    # ------------------------------------------------------------------ modes

    def _column(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        import pyarrow as pa

        from facespot.images import DEFAULT_MAX_PIXELS, read_image

        faces, errors = [], []
        for value in batch[self.job.column]:
            try:
                if isinstance(value, (str, np.str_, Path)):  # a file: facespot's decoder, errors name it
                    found = self._detect(read_image(str(value), max_pixels=self.job.max_pixels or DEFAULT_MAX_PIXELS))
                else:
                    found = self._detect(value, rgb=self.job.rgb)
                faces.append([face_record(f) for f in found])
                errors.append("")
            except FacespotError as exc:
                faces.append([])
                errors.append(str(exc))
            except Exception as exc:
                faces.append([])
                errors.append(f"detection failed ({type(exc).__name__}: {exc})")
        out = dict(batch)
        out["faces"] = pa.array(faces, type=faces_type())
        out["error"] = np.array(errors, dtype=object)
        return out

    def _files(self, batch: dict[str, np.ndarray]) -> Iterator[dict[str, Any]]:
        """Read this batch's files exactly as the local run does (a :class:`Source` over them);
        images are written here, a video found in the folder goes through the local run's
        :class:`~facespot.runtime.pipeline.VideoOutputs` (blur's tracking, its own sink)."""
        from facespot.images import DEFAULT_MAX_PIXELS
        from facespot.runtime.pipeline import VideoOutputs, output_path, signature_of
        from facespot.runtime.sinks import write_image
        from facespot.runtime.sources import Failure, Source

        index_of = {str(p): int(i) for i, p in zip(batch["index"], batch["path"])}
        source = Source(self.job.source_kind, self.job.spec, root=Path(self.job.root) if self.job.root else None,
                        files=[Path(str(p)) for p in batch["path"]], max_pixels=self.job.max_pixels or DEFAULT_MAX_PIXELS,
                        max_frames=self.job.max_frames)  # fmt: skip
        videos = None
        if self.job.handle is not None:
            videos = VideoOutputs(self.job.handle, self.out, lambda f: output_path(source, self.out, f),
                                  lambda: source.fps or 25.0, lambda f: f.path, max_frames=self.job.max_frames)  # fmt: skip
        rows: list[dict[str, Any]] = []
        notes = 0
        complete = False
        try:
            for item in source:
                if isinstance(item, Failure):
                    rows.append({"index": index_of.get(str(item.path), -1), "name": item.name, "path": str(item.path or ""),
                                 "error": item.message})  # fmt: skip
                    continue
                if not item.in_video:
                    item.index = index_of[str(item.path)]
                if item.in_video and videos is not None and not videos.needs_detection(item.name, item):
                    h, w = item.image.shape[:2]
                    row, faces = {"index": int(item.index), "name": item.name, "path": str(item.path or ""), "width": w,
                                  "height": h, "in_video": True, "detected": False}, None  # fmt: skip
                else:
                    row, faces = self._row(item)
                    if faces is None:
                        rows.append(row)
                        if item.in_video:  # locally a frame that fails detection stops the run: never skip or leak it
                            row["fatal"] = row["error"]
                            break
                        continue
                if item.in_video:
                    row["signature"] = signature_of(item).tobytes()
                rows.append(row)
                if self.job.handle is None or self.out is None:
                    continue
                try:
                    if item.in_video:
                        before = len(videos.opened)
                        videos.put(item.name, item, faces)
                        if len(videos.opened) > before:
                            row["written"] = str(videos.opened[-1])
                    else:
                        result = self.job.handle(item, faces)
                        if result is not None:
                            row["written"] = str(write_image(output_path(source, self.out, item), result))
                except FacespotError as exc:  # an output that cannot be written stops the job, as locally
                    row["fatal"] = str(exc)
                    break
                if len(rows) >= 256:  # a long video in the folder: stream its rows
                    yield self._columns(rows)
                    rows = []
                while notes < len(source.notes):
                    rows.append({"note": source.notes[notes]})
                    notes += 1
            else:
                complete = True
        finally:
            if videos is not None:
                videos.end(complete=complete)
        rows += [{"note": n} for n in source.notes[notes:]]
        if rows:
            yield self._columns(rows)

    def _segment(self, start: int, stop: int) -> Iterator[dict[str, Any]]:
        """Frames ``start .. stop-1`` of the video, up to 16 frames per output batch.

        A short segment (the file ends or a frame does not decode before ``stop``) ends with
        a row whose ``ended`` says so; the driver stops there, as the local run does.
        """
        import cv2

        from facespot.runtime.sources import open_source
        from facespot.runtime.tracking import frame_signature

        source = open_source(self.job.spec, max_frames=stop - start)
        if start > 0:
            source._capture.set(cv2.CAP_PROP_POS_FRAMES, start)
            if int(round(source._capture.get(cv2.CAP_PROP_POS_FRAMES))) != start:  # cannot seek: read up to it
                source.close()
                source = open_source(self.job.spec, max_frames=stop - start)
                for _ in range(start):
                    if not source._capture.grab():
                        break
        source.size = tuple(self.job.video_size) if self.job.video_size else None
        rows: list[dict[str, Any]] = []
        n = 0
        try:
            for frame in source:
                frame.index = start + frame.index
                frame.name = f"frame_{frame.index:06d}"
                if frame.index % self.job.every:  # blur --detect-every: the driver's tracks cover this frame
                    h, w = frame.image.shape[:2]
                    row, faces = {"index": frame.index, "name": frame.name, "width": w, "height": h, "detected": False}, []
                else:
                    row, faces = self._row(frame)
                row["signature"] = frame_signature(frame.image).tobytes()
                n += 1
                rows.append(row)
                if faces is None:  # locally a frame that fails detection stops the run: never skip or leak it
                    row["fatal"] = row["error"]
                elif self.job.raw_frames:
                    row["frame"] = frame.image
                elif self.job.handle is not None and self.out is not None:
                    try:
                        result = self.job.handle(frame, faces)
                    except FacespotError as exc:
                        row["fatal"] = str(exc)
                    else:
                        if result is not None:
                            row["frame"] = result
                if self.job.return_frames and "frame" not in row:
                    row["frame"] = np.zeros_like(frame.image)
                if row.get("fatal"):
                    break
                if len(rows) >= 16:
                    yield self._columns(rows)
                    rows = []
        finally:
            source.close()
        if n < stop - start and self.job.video_frames and not any(r.get("fatal") for r in rows):
            total = self.job.video_frames
            msg = f"the video ended after {start + n} of {total} announced frames (truncated file or undecodable frame)"
            if source.ended_early and "could not be decoded" in source.ended_early:
                msg = f"frame {start + n} could not be decoded"
            marker: dict[str, Any] = {"index": start + n, "ended": msg}
            if self.job.return_frames:
                w, h = self.job.video_size or (1, 1)
                marker["frame"] = np.zeros((h, w, 3), np.uint8)
            rows.append(marker)
        if rows:
            yield self._columns(rows)


def model_file(spec: str) -> Path | None:
    """The model argument as a file to ship to the actors, or None (packaged or registry name)."""
    path = Path(spec)
    return path if spec != "default" and path.is_file() else None
