"""Running a detector over a whole source (image, folder, video, camera) and writing outputs.

This is the work behind ``facespot detect`` and ``facespot blur``; the CLI modules only
parse arguments. Outputs are written as frames arrive (JSON lines flushed per frame, WIDER
files per image, video frames immediately), and every writer is closed in ``finally``, so a
run that stops early -- broken frame, Ctrl-C -- leaves valid files holding what was done.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, TextIO

import numpy as np

from facespot.errors import FacespotError, Terminated
from facespot.files import Output, check_outputs
from facespot.images import IMAGE_EXTENSIONS
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

    def summary(self, verb: str = "detect") -> str:
        unit = "frame(s)" if self.kind in ("video", "camera") else "image(s)"
        lines = [f"{verb}: {self.processed} {unit}, {self.faces} face(s)"]
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


def _progress(source: Source, enabled: bool | None, desc: str):
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    total = (len(source) or None) if not source.videos else None  # videos in a folder: frames, not files
    return tqdm(source, total=total, desc=desc, unit="img" if source.kind in ("image", "folder") else "frame",
                disable=not show, file=sys.stderr)  # fmt: skip


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Make SIGTERM (``kill``, ``timeout``, ``docker stop``, systemd) stop a run as Ctrl-C does.

    Python's default SIGTERM action ends the process at once, skipping ``finally``: a video
    being written then lacks its index (an MP4 without ``moov`` plays nowhere). Raising
    :class:`Terminated` instead unwinds through the writers' ``finally`` blocks. A second
    SIGTERM while they close is ignored. Only the main thread can own signal handlers; in
    other threads (a server's workers) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum, frame) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # no signals here (embedded interpreters)
        yield
        return
    try:
        yield
    finally:
        fired = True  # closing the writers must not be interrupted again
        signal.signal(signal.SIGTERM, previous)


def run_source(
    source: Source,
    detector,
    handle: Callable[[Frame, list], np.ndarray | None],
    out: Path | None,
    progress: bool | None = None,
    desc: str = "detect",
    on_failure: Callable[[Failure], None] | None = None,
) -> RunReport:
    """Detect faces in every frame; ``handle(frame, faces)`` returns the image to save (or None).

    Saved images go to :func:`output_path`; video frames go to one :class:`VideoSink` with the
    source's size and frame rate, closed in ``finally``.
    """
    report = RunReport(kind=source.kind, skipped=list(source.skipped))
    if out is not None:
        check_run_outputs(source, out)
    sink: VideoSink | None = None
    sink_for: str | None = None  # which video the open sink holds (a folder can hold several)
    try:
        with sigterm_as_interrupt():
            for item in _progress(source, progress, desc):
                if isinstance(item, Failure):
                    report.failures.append(item)
                    if on_failure is not None:
                        on_failure(item)
                    continue
                faces = detector(item.image, rgb=True)
                report.processed += 1
                result = handle(item, faces)
                report.faces += getattr(handle, "count", len)(faces)
                if out is None or result is None:
                    continue
                if source.kind in ("video", "camera") or item.in_video:
                    video_name = item.name if item.in_video else source.spec
                    if sink is not None and sink_for != video_name:
                        sink.close()
                        sink = None
                    if sink is None:
                        h, w = item.image.shape[:2]
                        sink = VideoSink(output_path(source, out, item), source.fps or 25.0, (w, h))
                        sink_for = video_name
                        report.written.append(sink.path)
                    sink.write(result)
                else:
                    report.written.append(write_image(output_path(source, out, item), result))
    finally:
        if sink is not None:
            sink.close()
        source.close()
    report.notes = list(source.notes)
    report.ended_early = source.ended_early
    if report.processed == 0:
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

    def count(self, faces: list) -> int:
        return sum(f.score >= self.threshold for f in faces)

    def failure(self, item: Failure) -> None:
        if self.json_file is not None:
            self.json_file.write(json.dumps({"source": item.name, "error": item.message}) + "\n")
            self.json_file.flush()

    def __call__(self, frame: Frame, faces: list) -> np.ndarray | None:
        from facespot.eval.predictions import write_wider_predictions
        from facespot.runtime.draw import draw_faces

        shown = [f for f in faces if f.score >= self.threshold]
        if self.json_file is not None:
            h, w = frame.image.shape[:2]
            rec = {"source": frame.name, "width": w, "height": h, "faces": [f.to_dict() for f in shown]}
            if self.source_kind in ("video", "camera") or frame.in_video:
                rec = {"frame": frame.index, **rec}
            self.json_file.write(json.dumps(rec) + "\n")
            self.json_file.flush()
        if self.wider_out is not None and not frame.in_video:  # WIDER files are per image
            key = wider_key(frame)
            if key in self.wider_written:
                raise FacespotError(f"{frame.path}: two images map to the same WIDER file {key}.txt (same folder and name)")
            self.wider_written.add(key)
            det = np.array([[*f.box, f.score] for f in faces if f.score >= self.wider_threshold], np.float64).reshape(-1, 5)
            write_wider_predictions(self.wider_out, {key: det})
        return draw_faces(frame.image, shown) if self.draw else None


def blur_handler(method: str, margin: float) -> Callable[[Frame, list], np.ndarray]:
    """The ``handle`` for ``facespot blur``."""
    from facespot.runtime.anonymize import anonymize

    def handle(frame: Frame, faces: list) -> np.ndarray:
        return anonymize(frame.image, [f.box for f in faces], method, margin)

    return handle
