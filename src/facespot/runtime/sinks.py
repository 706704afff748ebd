"""Where annotated / anonymised pixels go: image files and video files.

:class:`VideoSink` always releases its ``cv2.VideoWriter`` (use it as a context manager, or
call :meth:`VideoSink.close` in ``finally``) so a run interrupted by a broken frame or Ctrl-C
still leaves a playable file with every frame written so far. The output keeps the input's
frame size and rate. Audio is not copied (OpenCV does not read or write audio): mux it back
with e.g. ``ffmpeg -i out.mp4 -i in.mp4 -map 0:v -map 1:a -c copy final.mp4``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facespot.errors import FacespotError
from facespot.images import IMAGE_EXTENSIONS

# Codecs every opencv-python wheel can write (checked: mp4v in .mp4, MJPG in .avi).
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def write_image(path: str | Path, image_rgb: np.ndarray) -> Path:
    """Encode an RGB image to ``path`` (format from the extension); errors name the file."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise FacespotError(f"{path}: cannot write images with extension {ext!r}; use one of {', '.join(IMAGE_EXTENSIONS)}")
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(image_rgb[:, :, ::-1]))
    if not ok:
        raise FacespotError(f"{path}: OpenCV cannot encode a {ext} image")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buf.tobytes())
    except OSError as exc:
        raise FacespotError(f"{path}: cannot write ({exc.strerror})") from None
    return path


class VideoSink:
    """A video file being written frame by frame (RGB frames in, same size as opened)."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in VIDEO_CODECS:
            raise FacespotError(f"{self.path}: cannot write video with extension {ext!r}; use one of {', '.join(VIDEO_CODECS)}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FacespotError(f"{self.path}: cannot create its folder ({exc.strerror or exc})") from None
        self.size = (int(size[0]), int(size[1]))
        self.fps = float(fps)
        self.frames = 0
        self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*VIDEO_CODECS[ext]), self.fps, self.size)
        if not self.writer.isOpened():
            self.writer.release()
            raise FacespotError(f"{self.path}: OpenCV cannot open a {VIDEO_CODECS[ext]} video writer here")

    def write(self, image_rgb: np.ndarray) -> None:
        if (image_rgb.shape[1], image_rgb.shape[0]) != self.size:
            image_rgb = cv2.resize(image_rgb, self.size, interpolation=cv2.INTER_LINEAR)
        self.writer.write(np.ascontiguousarray(image_rgb[:, :, ::-1]))
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None

    def __enter__(self) -> "VideoSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
