"""Where annotated / anonymised pixels go: image files and video files.

:class:`VideoSink` is :class:`facespot.runtime.video_io.VideoWriter`: H.264 (browsers play
it) with the input's audio copied, the input's frame size and exact rate. Close it in
``finally`` (or use it as a context manager) so a run interrupted by a broken frame, Ctrl-C or
SIGTERM still leaves a playable file with every frame written so far.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facespot.errors import FacespotError
from facespot.files import write_atomically
from facespot.images import IMAGE_EXTENSIONS
from facespot.runtime.video_io import CONTAINERS, VideoWriter

# Every video output container holds H.264 (written by PyAV: facespot.runtime.video_io).
VIDEO_CODECS = {ext: "h264" for ext in CONTAINERS}


def write_image(path: str | Path, image_rgb: np.ndarray) -> Path:
    """Encode an image to ``path`` (format from the extension); errors name the file.

    ``HxWx3`` RGB, or a layout a blurred file kept (:func:`facespot.images.read_pixels`):
    ``HxW`` gray, ``HxWx4`` RGBA, ``uint16`` samples. What the format cannot hold is left out:
    alpha in JPEG and BMP, 16 bits outside PNG and TIFF (the top 8 bits are kept).
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise FacespotError(f"{path}: cannot write images with extension {ext!r}; use one of {', '.join(IMAGE_EXTENSIONS)}")
    img = np.asarray(image_rgb)
    if img.dtype == np.uint16 and ext not in (".png", ".tif", ".tiff"):
        img = (img >> 8).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4 and ext in (".jpg", ".jpeg", ".bmp"):
        img = img[:, :, :3]
    if img.ndim == 3:
        img = img[:, :, [2, 1, 0, 3][: img.shape[2]]]  # RGB(A) -> OpenCV's BGR(A)
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(img))
    if not ok:
        raise FacespotError(f"{path}: OpenCV cannot encode a {ext} image")
    # through a temporary file: a full disk or a stop mid-write leaves no half image under the name
    return write_atomically(path, lambda tmp: Path(tmp).write_bytes(buf.tobytes()), suffix=ext)


class VideoSink(VideoWriter):
    """A video file being written frame by frame (RGB frames in, same size as opened);
    ``audio_from``: the input video whose audio is copied in (see :mod:`.video_io`)."""
