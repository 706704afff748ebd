"""What ``facespot detect`` / ``blur`` read: an image, a folder, a video file or a camera.

:func:`open_source` classifies the argument and returns a :class:`Source` that yields
:class:`Frame` (an RGB image) or :class:`Failure` (an unreadable image, reported, not fatal).
Folders are walked recursively in sorted order; files that are not images by name are
*skipped* and listed in ``Source.skipped`` so the user sees what was ignored. A video that
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

    def _images(self) -> Iterator[Frame | Failure]:
        for i, path in enumerate(self.files):
            name = path.relative_to(self.root).as_posix() if self.root is not None else path.name
            try:
                image = read_image(path, max_pixels=self.max_pixels)
            except FacespotError as exc:
                yield Failure(name, str(exc), path)
                continue
            self.frames_read += 1
            yield Frame(image, name, i, path)

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
        files, skipped = [], []
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for fn in sorted(filenames):
                p = Path(dirpath) / fn
                (files if is_image_file(p) else skipped).append(p)
        return Source("folder", text, root=path, files=files, skipped=skipped, max_pixels=max_pixels)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
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
