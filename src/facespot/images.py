"""Reading images from disk: one strict decoder, so every caller sees the same pixels.

Every image facespot touches (training, evaluation, statistics) comes through
:func:`read_image`, which always returns an ``HxWx3`` ``uint8`` **RGB** array, whatever the
file held (grayscale, alpha, 16 bits). Files that cannot be decoded raise
:class:`~facespot.errors.FacespotError` naming the file, so a trainer can skip the image and
say which one it was instead of crashing on ``None``.

Orientation: images are returned as *stored* (EXIF orientation is not applied). Annotation
sets (WIDER, VOC, ...) give coordinates in the stored pixel grid, and :func:`image_size`
reads the stored size from the header, so boxes, decoded pixels and sizes all agree.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from facespot.errors import FacespotError

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
"""File name endings (lower case) that facespot treats as images."""

DEFAULT_MAX_PIXELS = 80_000_000
"""Refuse images above this many pixels (about 9000x9000): a guard against decompression bombs
and files that would exhaust memory long before they are useful for face detection."""

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_image_file(path: str | Path) -> bool:
    """True when the name ends with one of :data:`IMAGE_EXTENSIONS`."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _jpeg_header(data: bytes) -> tuple[tuple[int, int] | None, int | None]:
    """Walk JPEG marker segments up to the first scan.

    Returns ``((w, h) or None, offset of the first SOS or None)``. Walking segments (rather
    than searching bytes) skips EXIF thumbnails, whose own SOF/EOI markers would mislead.
    """
    size = None
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return size, None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:  # stand-alone markers
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF and pos + 9 <= n:
            h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
            size = (w, h)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return size, pos
        pos += 2 + length
    return size, None


def _header_size(path: Path) -> tuple[int, int] | None:
    """``(w, h)`` from a JPEG or PNG header without decoding pixels; None for other formats."""
    with open(path, "rb") as f:
        head = f.read(65536)
        if head.startswith(_PNG_SIGNATURE) and len(head) >= 24 and head[12:16] == b"IHDR":
            w, h = struct.unpack(">II", head[16:24])
            return int(w), int(h)
        if head[:2] == b"\xff\xd8":
            size, _ = _jpeg_header(head)
            if size is None and len(head) == 65536:  # large APP segments (EXIF, ICC): read on
                size, _ = _jpeg_header(head + f.read())
            return size
    return None


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image, reading only the header for JPEG and PNG.

    Why: formats with normalised coordinates (YOLO) and the statistics need sizes of
    thousands of images; decoding each one would take minutes. Other formats fall back
    to a full decode.
    """
    path = Path(path)
    if not path.is_file():
        raise FacespotError(f"{path}: image file not found")
    try:
        size = _header_size(path)
    except OSError as exc:
        raise FacespotError(f"{path}: cannot read image header ({exc})") from exc
    if size is not None:
        if size[0] <= 0 or size[1] <= 0:
            raise FacespotError(f"{path}: image header states a zero size {size[0]}x{size[1]}")
        return size
    img = read_image(path)
    return int(img.shape[1]), int(img.shape[0])


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)  # keep the top 8 bits: exact rescale of 0..65535
    if img.dtype == np.int8:
        return (img.astype(np.int16) + 128).astype(np.uint8)
    if img.dtype in (np.int16, np.int32, np.uint32):
        lo, hi = float(img.min()), float(img.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        return ((img.astype(np.float64) - lo) * scale).round().astype(np.uint8)
    # floating point images are taken to be 0..1
    return (np.clip(np.nan_to_num(img.astype(np.float64)), 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _to_rgb(img: np.ndarray, path: Path) -> np.ndarray:
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.ndim != 3:
        raise FacespotError(f"{path}: unsupported image layout with shape {img.shape}")
    channels = img.shape[2]
    if channels == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 2:  # gray + alpha
        return cv2.cvtColor(np.ascontiguousarray(img[:, :, 0]), cv2.COLOR_GRAY2RGB)
    if channels == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if channels == 4:  # BGRA: alpha dropped, not composited
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    raise FacespotError(f"{path}: unsupported image with {channels} channels")


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to an ``HxWx3`` ``uint8`` RGB array.

    Grayscale is replicated to three channels, alpha is dropped, 16-bit samples keep their
    top 8 bits. A missing, empty, corrupt or truncated file, or one over ``max_pixels``,
    raises :class:`FacespotError` naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise FacespotError(f"{path}: image file not found")
    if not path.is_file():
        raise FacespotError(f"{path}: expected an image file, found a directory or special file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FacespotError(f"{path}: cannot read image ({exc})") from exc
    if not data:
        raise FacespotError(f"{path}: image file is empty (0 bytes)")
    if data[:2] == b"\xff\xd8":
        size, sos = _jpeg_header(data)
        if sos is None:
            raise FacespotError(f"{path}: corrupt JPEG (no image data found after the header)")
        # libjpeg fills a truncated scan with grey and still "succeeds"; catch it here.
        if data.find(b"\xff\xd9", sos) < 0:
            raise FacespotError(f"{path}: truncated JPEG (the end-of-image marker is missing)")
    else:
        size = None
        if data.startswith(_PNG_SIGNATURE) and len(data) >= 24:
            size = struct.unpack(">II", data[16:24])
    if size is not None and size[0] * size[1] > max_pixels:
        raise FacespotError(
            f"{path}: image is {size[0]}x{size[1]} = {size[0] * size[1]} pixels, over the limit of {max_pixels}"
        )
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise FacespotError(f"{path}: cannot decode image ({exc.msg.strip() if hasattr(exc, 'msg') else exc})") from exc
    if img is None:
        raise FacespotError(f"{path}: cannot decode image (unknown format, corrupt or truncated data)")
    if img.size == 0 or img.shape[0] == 0 or img.shape[1] == 0:
        raise FacespotError(f"{path}: image has zero size")
    if img.shape[0] * img.shape[1] > max_pixels:
        raise FacespotError(
            f"{path}: image is {img.shape[1]}x{img.shape[0]} = {img.shape[0] * img.shape[1]} pixels, "
            f"over the limit of {max_pixels}"
        )
    img = _to_rgb(_to_uint8(img), path)
    return np.ascontiguousarray(img)
