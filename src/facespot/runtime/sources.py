"""What ``facespot detect`` / ``blur`` read: an image, a folder, a video file or a camera.

:func:`open_source` classifies the argument and returns a :class:`Source` that yields
:class:`Frame` (an RGB image) or :class:`Failure` (an unreadable image, reported, not fatal).
Folders are walked recursively in sorted order, following symlinked sub-folders (each real
folder once: a link loop is noted, not followed); images are read as images, videos frame by
frame (frames of a video in a folder carry ``in_video``), and other files are *skipped* and
listed in ``Source.skipped`` so the user sees what was ignored. A video that
stops before its announced frame count, or has an undecodable frame, ends the stream cleanly
with ``Source.ended_early`` set: everything read so far stays usable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from facespot.errors import FacespotError
from facespot.images import DEFAULT_MAX_PIXELS, is_image_file, read_image

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")


@dataclass
class Frame:
    """One image to process. ``name``: path relative to the folder (images) or ``frame_000012``."""

    image: np.ndarray  # HxWx3 uint8 RGB
    name: str
    index: int
    path: Path | None = None
    in_video: bool = False  # a frame of a video found in a folder (``name``: the video, ``index``: the frame)
    signature: np.ndarray | None = None  # its shot-change thumbnail, where the pixels are not at hand (Ray results)


@dataclass
class Failure:
    """An input that could not be read; ``message`` names the file and the reason."""

    name: str
    message: str
    path: Path | None = None


@dataclass
class Source:
    """An iterable of frames plus what the CLI reports afterwards."""

    kind: str  # "image", "folder", "video" or "camera"
    spec: str
    root: Path | None = None
    files: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    fps: float | None = None
    size: tuple[int, int] | None = None  # (width, height) for videos / cameras
    expected_frames: int | None = None
    frames_read: int = 0
    ended_early: str | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_frames: int | None = None
    notes: list[str] = field(default_factory=list)  # e.g. symlink loops not followed
    _capture: object | None = None

    def __len__(self) -> int:
        if self.kind in ("image", "folder"):
            return len(self.files)
        n = self.expected_frames or 0
        return min(n, self.max_frames) if self.max_frames else n

    def __iter__(self) -> Iterator[Frame | Failure]:
        if self.kind in ("image", "folder"):
            yield from self._images()
        else:
            yield from self._video()

    @property
    def videos(self) -> list[Path]:
        """Video files among a folder's files (read frame by frame)."""
        return [p for p in self.files if is_video_file(p)] if self.kind == "folder" else []

    def name_of(self, path: Path) -> str:
        """The name results carry for one of ``files``: its path inside the folder, else its file name."""
        return path.relative_to(self.root).as_posix() if self.root is not None else path.name

    def _images(self) -> Iterator[Frame | Failure]:
        for i, path in enumerate(self.files):
            name = self.name_of(path)
            if self.kind == "folder" and is_video_file(path):
                yield from self._folder_video(path, name)
                continue
            try:
                image = read_image(path, max_pixels=self.max_pixels)
            except FacespotError as exc:
                yield Failure(name, str(exc), path)
                continue
            self.frames_read += 1
            yield Frame(image, name, i, path)

    def _folder_video(self, path: Path, name: str) -> Iterator[Frame | Failure]:
        """Frames of one video inside a folder; an unreadable video is a reported failure."""
        try:
            cap = _open_capture(str(path), f"{path}: cannot open the video (corrupt file or a codec OpenCV cannot decode)")
        except FacespotError as exc:
            yield Failure(name, str(exc), path)
            return
        video = Source("video", str(path), max_frames=self.max_frames, _capture=cap,
                       expected_frames=int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) or None)  # fmt: skip
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        self.fps = fps if fps > 0 else 25.0  # the rate of the video being read, for its output
        for frame in video._video():
            self.frames_read += 1
            yield Frame(frame.image, name, frame.index, path, in_video=True)
        if video.ended_early:
            self.notes.append(f"{name}: {video.ended_early}")

    def _video(self) -> Iterator[Frame | Failure]:
        cap = self._capture
        if cap is None:
            return
        try:
            i = 0
            while self.max_frames is None or i < self.max_frames:
                try:
                    ok, bgr = cap.read()
                except cv2.error as exc:
                    self.ended_early = f"frame {i} could not be decoded ({str(exc).strip().splitlines()[-1]})"
                    break
                if not ok or bgr is None or bgr.size == 0:
                    if self.kind == "video" and self.expected_frames and i < self.expected_frames:
                        self.ended_early = (
                            f"the video ended after {i} of {self.expected_frames} announced frames "
                            "(truncated file or undecodable frame)"
                        )
                    elif self.kind == "camera" and i == 0:
                        raise FacespotError(f"camera {self.spec}: opened but delivered no frame (in use, or not a capture device?)")
                    break
                if bgr.ndim == 2:
                    bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
                h, w = bgr.shape[:2]
                if self.size is None:
                    self.size = (w, h)
                elif (w, h) != self.size:  # writers need one size: keep the first frame's
                    bgr = cv2.resize(bgr, self.size, interpolation=cv2.INTER_LINEAR)
                self.frames_read += 1
                yield Frame(np.ascontiguousarray(bgr[:, :, ::-1]), f"frame_{i:06d}", i)
                i += 1
        finally:
            self.close()

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def is_video_file(path: str | Path) -> bool:
    """True when the name ends with one of :data:`VIDEO_EXTENSIONS`."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def walk_folder(root: Path) -> tuple[list[Path], list[Path], list[str]]:
    """``(images and videos, other files, notes)`` under ``root``, sorted, recursively.

    Symlinked sub-folders are followed (os.walk does not by default, which skipped them
    without a word); a link back to a folder already walked is noted and not followed."""
    files: list[Path] = []
    skipped: list[Path] = []
    notes: list[str] = []
    seen = {os.path.realpath(root)}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        keep = []
        for d in sorted(dirnames):
            real = os.path.realpath(os.path.join(dirpath, d))
            if real in seen:
                notes.append(f"{Path(dirpath) / d}: a link to a folder already searched ({real}); not followed again")
                continue
            seen.add(real)
            keep.append(d)
        dirnames[:] = keep
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            (files if is_image_file(p) or is_video_file(p) else skipped).append(p)
    return files, skipped, notes


def _quiet_opencv() -> None:
    """OpenCV prints its own warnings for a missing camera; we raise a clear error instead."""
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:  # pragma: no cover - older builds
        pass


def _open_capture(target, label: str) -> cv2.VideoCapture:
    _quiet_opencv()
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        cap.release()
        raise FacespotError(label)
    return cap


def open_source(spec: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, max_frames: int | None = None) -> Source:
    """Classify ``spec`` (camera index, folder, video or image file) and open it."""
    text = str(spec)
    if text.isdigit() and not Path(text).exists():
        index = int(text)
        cap = _open_capture(
            index,
            f"camera {index}: cannot open it (no such device, no permission, or in use); "
            f"check the index (Linux: ls /dev/video*)",
        )
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        return Source("camera", text, fps=fps if fps > 0 else 30.0, max_frames=max_frames, _capture=cap)
    path = Path(text)
    if not path.exists():
        raise FacespotError(f"{path}: no such file or folder (expected an image, a folder, a video file or a camera index)")
    if path.is_dir():
        files, skipped, notes = walk_folder(path)
        return Source("folder", text, root=path, files=files, skipped=skipped, max_pixels=max_pixels,
                      max_frames=max_frames, notes=notes)  # fmt: skip
    if is_video_file(path):
        cap = _open_capture(str(path), f"{path}: cannot open the video (corrupt file or a codec OpenCV cannot decode)")
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        return Source(
            "video", text, fps=fps if fps > 0 else 25.0, expected_frames=count if count > 0 else None,
            max_frames=max_frames, _capture=cap,
        )  # fmt: skip
    if is_image_file(path):
        return Source("image", text, root=path.parent, files=[path], max_pixels=max_pixels)
    raise FacespotError(
        f"{path}: not an image ({', '.join(e for e in ('.jpg', '.png', '.bmp', '.webp', '.tif'))}) "
        f"or a video ({', '.join(VIDEO_EXTENSIONS)}) by its extension"
    )
