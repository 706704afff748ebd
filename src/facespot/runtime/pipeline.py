"""Running a detector over a whole source (image, folder, video, camera) and writing outputs.

This is the work behind ``facespot detect`` and ``facespot blur``; the CLI modules only
parse arguments. Outputs are written as frames arrive (JSON lines flushed per frame, WIDER
files per image, video frames immediately), and every writer is closed in ``finally``, so a
run that stops early -- broken frame, Ctrl-C -- leaves valid files holding what was done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

import numpy as np

from facespot.errors import FacespotError, sigterm_as_interrupt
from facespot.files import Output, check_outputs
from facespot.images import IMAGE_EXTENSIONS, is_image_file
from facespot.runtime.progress import RunProgress
from facespot.runtime.sinks import VIDEO_CODECS, VideoSink, write_image
from facespot.runtime.sources import VIDEO_EXTENSIONS, Failure, Frame, Source, is_video_file


@dataclass
class RunReport:
    """What a run did, for the summary line and the exit code."""

    kind: str
    processed: int = 0
    faces: int = 0
    failures: list[Failure] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    ended_early: str | None = None
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    video_frames: int = 0  # of ``processed``: frames of videos found in a folder

    def summary(self, verb: str = "detect") -> str:
        if self.kind in ("video", "camera"):
            done = f"{self.processed} frame(s)"
        else:  # a folder of photos and videos: "3 image(s), 40 video frame(s)", not "43 image(s)"
            done = f"{self.processed - self.video_frames} image(s)"
            done += f", {self.video_frames} video frame(s)" if self.video_frames else ""
        lines = [f"{verb}: {done}, {self.faces} face(s)"]
        if self.skipped:
            shown = ", ".join(p.name for p in self.skipped[:5]) + (", ..." if len(self.skipped) > 5 else "")
            lines.append(f"skipped {len(self.skipped)} file(s) that are neither images nor videos: {shown}")
        lines += [f"note: {n}" for n in self.notes[:10]]
        if self.failures:
            lines.append(f"{len(self.failures)} input(s) could not be read:")
            lines += [f"  {f.message}" for f in self.failures[:10]]
            if len(self.failures) > 10:
                lines.append(f"  ... and {len(self.failures) - 10} more")
        if self.ended_early:
            lines.append(f"stopped early: {self.ended_early}; everything before it was written")
        for p in self.written[:3]:
            lines.append(f"wrote {p}")
        if len(self.written) > 3:
            lines.append(f"wrote {len(self.written) - 3} more file(s)")
        return "\n".join(lines)


def _is_video_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_CODECS


def _video_output_name(name: str) -> str:
    """A video's output name: same name when OpenCV can write its container, else ``.mp4``."""
    return name if _is_video_path(Path(name)) else str(Path(name).with_suffix(".mp4"))


def output_path(source: Source, out: Path, frame: Frame | None = None) -> Path:
    """Where a frame's image (or the video) goes under ``--save`` / ``--out``.

    A single image: ``out`` itself when it has an image extension, else ``out/<name>``.
    A folder: ``out/<path relative to the folder>`` (a video in it: the same name, ``.mp4``
    when OpenCV cannot write its container). Video / camera: ``out`` when it has a video
    extension, else ``out/<video stem>.mp4`` (``camera<N>.mp4``).
    """
    if source.kind in ("video", "camera"):
        if _is_video_path(out):
            return out
        stem = Path(source.spec).stem if source.kind == "video" else f"camera{source.spec}"
        return out / f"{stem}.mp4"
    assert frame is not None
    if source.kind == "image" and out.suffix.lower() in IMAGE_EXTENSIONS:
        return out
    if frame.in_video:
        return out / _video_output_name(frame.name)
    return out / frame.name


def check_save_target(source: Source, out: Path) -> None:
    """The output's form must fit the input's: a file name of the right kind, or a folder."""
    suffix = out.suffix.lower()
    if source.kind in ("video", "camera") and suffix and not _is_video_path(out):
        raise FacespotError(f"{out}: a video needs a video output ({', '.join(VIDEO_CODECS)}) or a folder")
    if source.kind == "folder" and (suffix in IMAGE_EXTENSIONS or suffix in VIDEO_EXTENSIONS):
        raise FacespotError(f"{out}: a folder of inputs needs an output folder, not a file name")
    if source.kind == "image" and suffix in VIDEO_EXTENSIONS:
        raise FacespotError(
            f"{out}: an image input needs an image output ({', '.join(IMAGE_EXTENSIONS)}) or a folder, not a video file"
        )
    if source.kind in ("image", "folder") and suffix and suffix not in IMAGE_EXTENSIONS and not out.is_dir():
        # out.gif, out.xyz: not a format facespot writes; quietly making a folder of that name hid the mistake
        raise FacespotError(
            f"{out}: {suffix} is not an image format facespot writes ({', '.join(IMAGE_EXTENSIONS)}); give such a "
            "file name, or a folder (an existing one, or a name without an extension)"
        )


def check_detect_request(source: Source, wider_out: str | Path | None, json_out: str | None, resume: bool) -> None:
    """``detect``'s outputs that need images, for both engines: ``--wider-out`` (one file per
    image) and ``--resume`` (a ``--json FILE``, not standard output, of an image or a folder)."""
    if wider_out and source.kind in ("video", "camera"):
        raise FacespotError("--wider-out writes one file per image; it does not apply to videos or cameras")
    if resume and (not json_out or json_out == "-" or source.kind in ("video", "camera")):
        raise FacespotError("--resume continues a --json FILE for an image or a folder (not standard output, not a video)")


def source_inputs(source: Source) -> list[Path]:
    """The files a run reads, which no output may replace."""
    if source.kind == "camera":
        return []
    if source.kind == "video":
        return [Path(source.spec)]
    return list(source.files)


def planned_outputs(source: Source, out: Path, option: str = "--save") -> list[Output]:
    """Every file ``--save`` / ``--out`` will write, known before the first frame is read.

    Two inputs of a folder that map to one output (``clip.webm`` and ``clip.mp4`` both save
    as ``clip.mp4``) are refused here, naming both, since the second would overwrite the first."""
    if source.kind in ("video", "camera"):
        return [Output(option, output_path(source, out))]
    outs = []
    seen: dict[Path, Path] = {}
    for i, path in enumerate(source.files):
        name = source.name_of(path)
        frame = Frame(np.empty((0, 0, 3), np.uint8), name, i, path, in_video=source.kind == "folder" and is_video_file(path))
        target = output_path(source, out, frame)
        if target in seen:
            raise FacespotError(
                f"{option} {out}: {seen[target]} and {path} would both be saved as {target}; "
                "rename one of them or save to separate folders"
            )
        seen[target] = path
        outs.append(Output(option, target))
    return outs


def check_run_outputs(source: Source, save: Path | None, save_option: str = "--save", others: list[Output] = ()) -> None:
    """One check of everything a detect / blur run writes, before the model loads: the saved
    images or videos and ``others`` (``--json``, ``--wider-out``) never replace an input and
    can be written (:func:`facespot.files.check_outputs`)."""
    outs = list(others)
    if save is not None:
        check_save_target(source, save)
        outs += planned_outputs(source, save, save_option)
    check_outputs(outs, source_inputs(source))


def wider_key(frame: Frame) -> str:
    """``event/name`` of an image for the WIDER prediction layout (event = parent folder)."""
    path = frame.path if frame.path is not None else Path(frame.name)
    event = path.parent.name or "images"
    return f"{event}/{path.stem}"


def video_key(source: Source, frame: Frame) -> str | None:
    """Which video a frame belongs to (the source, or a video inside a folder); None for images."""
    if source.kind in ("video", "camera"):
        return source.spec
    return frame.name if frame.in_video else None


def signature_of(frame: Frame) -> np.ndarray:
    """The frame's shot-change thumbnail (:func:`facespot.runtime.tracking.frame_signature`)."""
    from facespot.runtime.tracking import frame_signature

    return frame.signature if frame.signature is not None else frame_signature(frame.image)


class _PlainStream:
    """A stateless ``handle`` seen as a stream: every frame detected, each result at once."""

    def __init__(self, handle: Callable[[Frame, list], np.ndarray | None]) -> None:
        self.handle = handle

    def needs_detection(self, index: int) -> bool:
        return True

    def push(self, frame: Frame, faces: list | None) -> list[tuple[Frame, np.ndarray | None]]:
        return [(frame, self.handle(frame, faces or []))]

    def finish(self) -> list[tuple[Frame, np.ndarray | None]]:
        return []


def open_stream(handle, key: str):
    """The per-video processor of a ``handle``: its own ``stream(key)`` when it has one (blur's
    tracking, which may hold frames back), else the handle frame by frame."""
    stream = handle.stream(key) if hasattr(handle, "stream") else None
    return stream if stream is not None else _PlainStream(handle)


class VideoOutputs:
    """The frames of a run's videos, through their streams, to one :class:`VideoSink` each.

    ``put`` takes a frame with its faces (None: not detected) and writes whatever the stream
    releases; ``end`` drains the stream (also when the run stops early: the frames it holds are
    written) and closes the sink, copying all of the input's audio when ``complete``."""

    def __init__(self, handle, out: Path | None, target: Callable[[Frame], Path], fps: Callable[[], float],
                 audio_from: Callable[[Frame], Path | None], max_frames: int | None = None,
                 opened: list[Path] | None = None) -> None:  # fmt: skip
        self.handle, self.out, self.target, self.fps, self.audio_from = handle, out, target, fps, audio_from
        self.max_frames = max_frames
        self.key: str | None = None
        self.stream = None
        self.frames = 0  # frames of the current video so far
        self.sink: VideoSink | None = None
        self.opened = opened if opened is not None else []  # the files written, as they are opened

    def needs_detection(self, key: str, frame: Frame) -> bool:
        self._switch(key)
        return self.stream.needs_detection(frame.index)

    def put(self, key: str, frame: Frame, faces: list | None) -> None:
        self._switch(key)
        self.frames += 1
        for done, result in self.stream.push(frame, faces):
            self._write(done, result)

    def _switch(self, key: str) -> None:
        if key != self.key:
            self.end(complete=True)
            self.key, self.stream, self.frames = key, open_stream(self.handle, key), 0

    def _write(self, frame: Frame, result: np.ndarray | None) -> None:
        if self.out is None or result is None:
            return
        if self.sink is None:
            h, w = frame.image.shape[:2]
            self.sink = VideoSink(self.target(frame), self.fps(), (w, h), audio_from=self.audio_from(frame))
            self.opened.append(self.sink.path)
        self.sink.write(result)

    def end(self, complete: bool) -> None:
        """``complete``: the video was read to its end (``--max-frames`` reached does not count)."""
        complete = complete and not (self.max_frames and self.frames >= self.max_frames)
        try:
            if self.stream is not None:
                for done, result in self.stream.finish():
                    self._write(done, result)
        finally:
            self.stream, self.key = None, None
            if self.sink is not None:
                sink, self.sink = self.sink, None
                sink.close(complete=complete)


def run_source(
    source: Source,
    detector,
    handle: Callable[[Frame, list], np.ndarray | None],
    out: Path | None,
    progress: bool | None = None,
    desc: str = "detect",
    on_failure: Callable[[Failure], None] | None = None,
    resumed: bool = False,
) -> RunReport:
    """Detect faces in every frame; ``handle(frame, faces)`` returns the image to save (or None).

    Saved images go to :func:`output_path`. The frames of a video go through the handle's
    per-video stream (:func:`open_stream`; blur's tracks may skip detection on some frames and
    release frames late) to one :class:`VideoSink` with the source's size, frame rate and audio,
    closed in ``finally`` after the frames still held are written. ``resumed``: the run continues
    an earlier one (``--resume``), so reading nothing new is no failure of the whole run.
    """
    report = RunReport(kind=source.kind, skipped=list(source.skipped))
    if out is not None:
        check_run_outputs(source, out)

    def audio_from(frame: Frame) -> Path | None:
        return frame.path if frame.in_video else (Path(source.spec) if source.kind == "video" else None)

    videos = VideoOutputs(handle, out, lambda f: output_path(source, out, f), lambda: source.fps or 25.0, audio_from,
                          max_frames=source.max_frames, opened=report.written)  # fmt: skip
    complete = False
    bar = RunProgress.of(source, progress, desc)
    with sigterm_as_interrupt():  # also around the closing: a second SIGTERM must not cut it short
        try:
            for item in bar.track(source):
                if isinstance(item, Failure):
                    report.failures.append(item)
                    if on_failure is not None:
                        on_failure(item)
                    continue
                key = video_key(source, item)
                if key is not None and not videos.needs_detection(key, item):
                    report.processed += 1
                    report.video_frames += item.in_video
                    videos.put(key, item, None)
                    continue
                faces = detector(item.image, rgb=True)
                report.processed += 1
                report.video_frames += item.in_video
                report.faces += getattr(handle, "count", len)(faces)
                if key is not None:
                    videos.put(key, item, faces)
                    continue
                result = handle(item, faces)
                if out is not None and result is not None:
                    report.written.append(write_image(output_path(source, out, item), result))
                if hasattr(handle, "commit"):  # detect's JSON line, after the image it describes
                    handle.commit()
            complete = not source.ended_early
        finally:
            try:
                videos.end(complete=complete)
            finally:
                source.close()
                bar.close()
    report.notes = list(source.notes)
    report.ended_early = source.ended_early
    if report.processed == 0 and not resumed:
        if report.failures:
            raise FacespotError(f"no input could be read ({len(report.failures)} failed); first: {report.failures[0].message}")
        if source.kind == "folder":
            raise FacespotError(
                f"{source.spec}: no images or videos found (looked for {', '.join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)}; "
                f"{len(source.skipped)} other file(s) skipped)"
            )
        raise FacespotError(f"{source.spec}: no frame could be read")
    return report


class DetectOutputs:
    """The ``handle`` for ``facespot detect``: JSON lines, WIDER files, annotated images.

    ``threshold`` filters what is drawn and written to JSON; ``wider_threshold`` (usually
    much lower: AP needs the low-score tail) filters the WIDER files. The detector itself
    runs at the lower of the two.
    """

    def __init__(
        self, json_file: TextIO | None, wider_out: Path | None, draw: bool, threshold: float, wider_threshold: float,
        source_kind: str,
    ) -> None:  # fmt: skip
        self.json_file = json_file
        self.wider_out = wider_out
        self.draw = draw
        self.threshold = threshold
        self.wider_threshold = wider_threshold
        self.source_kind = source_kind
        self.wider_written: set[str] = set()
        self.tracker = None  # the JSON lines of a video carry a track id per face (runtime.tracking)
        self.tracking: str | None = None
        self.pending: str | None = None  # an image's JSON line, held until its --save image is written

    def commit(self) -> None:
        """Write the JSON line held back for an image whose annotated copy is now saved: the
        line is what ``--resume`` counts as done, so it must come after the image."""
        if self.pending is not None and self.json_file is not None:
            self.json_file.write(self.pending)
            self.json_file.flush()
        self.pending = None

    def count(self, faces: list) -> int:
        return sum(f.score >= self.threshold for f in faces)

    def failure(self, item: Failure) -> None:
        if self.json_file is not None:
            self.json_file.write(json.dumps({"source": item.name, "error": item.message}) + "\n")
            self.json_file.flush()

    def tracks(self, frame: Frame, shown: list) -> list[int]:
        """The track id of each shown face of a video frame: the same face keeps its id across
        frames (a new id after it was lost for longer than the hold, or after a shot change)."""
        from facespot.runtime.tracking import FaceTracker, TrackSettings

        key = frame.name if frame.in_video else "video"
        if self.tracker is None or self.tracking != key:
            self.tracker = FaceTracker(TrackSettings(threshold=min(max(self.threshold, 0.0), 1.0)))
            self.tracking = key
        step = self.tracker.update(frame.index, shown, signature_of(frame))
        ids = {id(face): track.id for face, track in step.matched}
        return [ids[id(f)] for f in shown]

    def __call__(self, frame: Frame, faces: list) -> np.ndarray | None:
        from facespot.data.predictions import write_wider_predictions
        from facespot.runtime.draw import draw_faces

        shown = [f for f in faces if f.score >= self.threshold]
        if self.json_file is not None:
            h, w = frame.image.shape[:2]
            rec = {"source": frame.name, "width": w, "height": h, "faces": [f.to_dict() for f in shown]}
            video = self.source_kind in ("video", "camera") or frame.in_video
            if video:
                for face, track in zip(rec["faces"], self.tracks(frame, shown)):
                    face["track"] = track
                rec = {"frame": frame.index, **rec}
            self.pending = json.dumps(rec) + "\n"
            if video or not self.draw:  # no image of its own to save first: the line now
                self.commit()
        if self.wider_out is not None and not frame.in_video:  # WIDER files are per image
            key = wider_key(frame)
            if key in self.wider_written:
                raise FacespotError(f"{frame.path}: two images map to the same WIDER file {key}.txt (same folder and name)")
            self.wider_written.add(key)
            det = np.array([[*f.box, f.score] for f in faces if f.score >= self.wider_threshold], np.float64).reshape(-1, 5)
            write_wider_predictions(self.wider_out, {key: det})
        return draw_faces(frame.image, shown) if self.draw else None


class BlurOutputs:
    """The ``handle`` for ``facespot blur``: each image on its own; each video through a
    :class:`BlurStream` (faces tracked, held through misses, covered a few frames before their
    first detection) unless ``track`` is off. ``settings`` (:class:`~.tracking.TrackSettings`)
    hold the operating point: faces at or above their size's threshold (``settings.start``) are
    blurred, weaker ones (down to ``settings.kept``; the detector runs at ``settings.low``) only
    continue a track."""

    def __init__(self, method: str, margin: float, settings=None, track: bool = True, shape: str = "ellipse") -> None:
        from facespot.runtime.anonymize import check_cover
        from facespot.runtime.tracking import TrackSettings

        check_cover(method, shape)
        self.method, self.margin, self.shape = method, margin, shape
        self.settings = (settings or TrackSettings(threshold=0.0)).check()
        self.track = track

    def count(self, faces: list) -> int:
        return sum(f.score >= self.settings.start(f.box) for f in faces)

    def __call__(self, frame: Frame, faces: list) -> np.ndarray:
        from facespot.images import read_pixels
        from facespot.runtime.anonymize import anonymize

        boxes = [f.box for f in faces if f.score >= self.settings.start(f.box)]
        pixels = frame.image
        if frame.path is not None and not frame.in_video and is_image_file(frame.path):
            # the file's own alpha, gray and 16 bits are written back, not the detector's 8-bit RGB
            h, w = frame.image.shape[:2]
            try:
                stored = read_pixels(frame.path, max_pixels=h * w)
            except FacespotError:  # changed since it was read: blur what was detected
                stored = None
            if stored is not None and stored.shape[:2] == (h, w):
                pixels = stored
        return anonymize(pixels, boxes, self.method, self.margin, self.shape)

    def stream(self, key: str) -> "BlurStream | None":
        return BlurStream(self) if self.track else None


class BlurStream:
    """One video being blurred: a :class:`~.tracking.CoverPlanner` over its frames."""

    def __init__(self, outputs: BlurOutputs) -> None:
        from facespot.runtime.tracking import CoverPlanner

        self.outputs = outputs
        self.planner = CoverPlanner(outputs.settings)

    def needs_detection(self, index: int) -> bool:
        return self.planner.needs_detection(index)

    def _blur(self, released) -> list[tuple[Frame, np.ndarray]]:
        from facespot.runtime.anonymize import anonymize

        o = self.outputs
        return [(frame, anonymize(frame.image, boxes, o.method, o.margin, o.shape)) for frame, boxes in released]

    def push(self, frame: Frame, faces: list | None) -> list[tuple[Frame, np.ndarray]]:
        return self._blur(self.planner.push(frame, faces, signature_of(frame)))

    def finish(self) -> list[tuple[Frame, np.ndarray]]:
        return self._blur(self.planner.finish())


def blur_outputs(model: str, method: str, margin: float | None = None, track: bool = True, threshold: float | None = None,
                 keep: float | None = None, shape: str = "ellipse", **tracking) -> tuple[BlurOutputs, str]:  # fmt: skip
    """``facespot blur``'s handle for a model: its measured operating point
    (:func:`facespot.runtime.tracking.blur_settings`, :func:`~.tracking.blur_margin` for a
    ``margin`` of None) with the user's overrides (``threshold``, ``keep`` and the
    :class:`~.tracking.TrackSettings` fields in ``tracking``); returns the handle and a note
    saying where the operating point came from. The detector must run at ``handle.settings.low``."""
    from dataclasses import replace

    from facespot.runtime.tracking import blur_margin, blur_settings

    margin = blur_margin(model, margin)
    settings, origin = blur_settings(model)
    if threshold is not None:  # one threshold for every face size; the measured keep ratio with it
        ratio = 1.0 if settings.keep is None or settings.threshold <= 0 else settings.keep / settings.threshold
        settings = replace(settings, threshold=threshold, sizes=(), keep=threshold * ratio if keep is None else keep)
    settings = settings.with_(keep=keep, **tracking)
    if not track:
        if settings.every > 1:
            raise FacespotError("--detect-every needs tracking (it carries the frames between detections); drop --no-track")
        settings = settings.with_(keep=settings.threshold)
    note = f"threshold {settings.describe()}, boxes grown {margin:g} per side" + (
        f", tracks kept down to {settings.low:g}" if track else ", no tracking")
    note += " (measured for this model)" if origin == "measured" and threshold is None else (
        " (given)" if threshold is not None else " (fallback: no measured operating point for this model)")
    return BlurOutputs(method, margin, settings, track, shape), note
