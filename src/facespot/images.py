"""Reading images from disk: one strict decoder, so every caller sees the same pixels.

Every image facespot touches (training, evaluation, statistics) comes through
:func:`read_image`, which always returns an ``HxWx3`` ``uint8`` **RGB** array, whatever the
file held (grayscale, alpha, 16 bits). Files that cannot be decoded raise
:class:`~facespot.errors.FacespotError` naming the file, so a trainer can skip the image and
say which one it was instead of crashing on ``None``.

Orientation: images are returned as *displayed*: the EXIF orientation tag (JPEG ``APP1``,
PNG ``eXIf``, WebP ``EXIF``, a TIFF's own tag) is applied, as browsers, phones and photo
viewers do -- phones often store a portrait photo sideways with orientation 6. Detection
boxes, saved images and :func:`image_size` (which reads the tag from the header too) all
refer to the photo as the user sees it. OpenCV's ``IMREAD_UNCHANGED`` (needed for 16-bit and
alpha) ignores the tag, so it is read and applied here, the same for every caller.

Pixel types (:func:`_to_uint8`): ``uint8`` as is; ``uint16`` keeps the top 8 bits (16-bit
PNG / TIFF); other integer types are taken by their value range and must lie in 0..255;
floating point must be finite and in 0..1. Anything else is a :class:`FacespotError`, never a
silently wrong picture.
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


# ---------------------------------------------------------------------- EXIF orientation


def _tiff_orientation(tiff: bytes) -> int:
    """Tag 0x0112 of IFD0 in a TIFF structure (an EXIF block is one); 1 when absent."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    e = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(e + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack(e + "H", tiff[ifd : ifd + 2])
    for k in range(min(count, 512)):
        pos = ifd + 2 + 12 * k
        if pos + 12 > len(tiff):
            break
        tag, kind, n = struct.unpack(e + "HHI", tiff[pos : pos + 8])
        if tag == 0x0112 and n >= 1:
            if kind == 3:  # SHORT, left-justified in the value field
                return struct.unpack(e + "H", tiff[pos + 8 : pos + 10])[0]
            if kind == 4:  # LONG
                return struct.unpack(e + "I", tiff[pos + 8 : pos + 12])[0]
    return 1


def _jpeg_exif(data: bytes) -> bytes | None:
    pos, n = 2, len(data)
    while pos + 4 <= n and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker == 0xDA:  # start of scan: no more header segments
            return None
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        body = data[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and body.startswith(b"Exif\x00\x00"):
            return body[6:]
        pos += 2 + length
    return None


def _png_exif(data: bytes) -> bytes | None:
    pos, n = 8, len(data)
    while pos + 8 <= n:
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"eXIf":
            return data[pos + 8 : pos + 8 + length]
        if kind in (b"IDAT", b"IEND"):  # viewers honour eXIf only before the image data
            return None
        pos += 12 + length
    return None


def _webp_exif(data: bytes) -> bytes | None:
    pos, n = 12, len(data)
    while pos + 8 <= n:
        kind, length = struct.unpack("<4sI", data[pos : pos + 8])
        if kind == b"EXIF":
            body = data[pos + 8 : pos + 8 + length]
            return body[6:] if body.startswith(b"Exif\x00\x00") else body
        pos += 8 + length + (length & 1)
    return None


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of an encoded JPEG, PNG, WebP or TIFF; 1 when absent or malformed."""
    try:
        if data[:2] == b"\xff\xd8":
            exif = _jpeg_exif(data)
        elif data.startswith(_PNG_SIGNATURE):
            exif = _png_exif(data)
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            exif = _webp_exif(data)
        elif data[:4] in (b"II*\x00", b"MM\x00*"):
            exif = data
        else:
            return 1
        value = _tiff_orientation(exif) if exif else 1
    except struct.error:
        return 1
    return value if 1 <= value <= 8 else 1


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Stored pixels -> displayed pixels for an EXIF orientation (as browsers and Pillow do)."""
    if orientation == 2:
        img = img[:, ::-1]
    elif orientation == 3:
        img = img[::-1, ::-1]
    elif orientation == 4:
        img = img[::-1]
    elif orientation == 5:
        img = img.swapaxes(0, 1)
    elif orientation == 6:
        img = np.rot90(img, -1)  # 90 degrees clockwise
    elif orientation == 7:
        img = img.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        img = np.rot90(img, 1)
    return np.ascontiguousarray(img)


def _header_size(path: Path) -> tuple[int, int] | None:
    """``(w, h)`` as displayed (EXIF orientation applied) from a JPEG or PNG header without
    decoding pixels; None for other formats."""
    with open(path, "rb") as f:
        head = f.read(65536)
        size = None
        if head.startswith(_PNG_SIGNATURE) and len(head) >= 24 and head[12:16] == b"IHDR":
            w, h = struct.unpack(">II", head[16:24])
            size = (int(w), int(h))
        elif head[:2] == b"\xff\xd8":
            size, _ = _jpeg_header(head)
            if size is None and len(head) == 65536:  # large APP segments (EXIF, ICC): read on
                head += f.read()
                size, _ = _jpeg_header(head)
        if size is not None and exif_orientation(head) >= 5:  # 5-8 turn the photo a quarter
            size = (size[1], size[0])
        return size


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


def _to_uint8(img: np.ndarray, what: str | Path = "image") -> np.ndarray:
    """Samples of any pixel type -> ``uint8``, or a :class:`FacespotError` naming ``what``.

    ``uint16`` keeps the top 8 bits (16-bit files); other integers must already lie in 0..255;
    floats must be finite and in 0..1. A value range that fits neither is refused rather than
    guessed: a float image in 0..255 clipped to 0..1 is a white frame, and a detector run on
    it answers "no faces" without a hint of the mistake.
    """
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.bool_:
        return img.astype(np.uint8) * 255
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)  # keep the top 8 bits: exact rescale of 0..65535
    if img.size == 0:
        return img.astype(np.uint8)
    if np.issubdtype(img.dtype, np.integer):
        lo, hi = int(img.min()), int(img.max())
        if lo >= 0 and hi <= 255:
            return img.astype(np.uint8)
        raise FacespotError(
            f"{what}: {img.dtype} pixel values span {lo}..{hi}, outside 0..255; give 8-bit values (uint8, or any "
            "integer type holding 0..255), 16-bit data as uint16, or floats in 0..1"
        )
    if np.issubdtype(img.dtype, np.floating):
        finite = np.isfinite(img)
        if not finite.all():
            bad = "NaN" if np.isnan(img).any() else "infinite"
            raise FacespotError(f"{what}: the {img.dtype} image holds {bad} values ({int((~finite).sum())} samples)")
        lo, hi = float(img.min()), float(img.max())
        tol = 1e-3  # rounding from colour conversions
        if lo >= -tol and hi <= 1.0 + tol:
            return (np.clip(img.astype(np.float32), 0.0, 1.0) * 255.0).round().astype(np.uint8)
        hint = " (0..255 data: divide by 255 or pass uint8)" if lo >= 0 and hi <= 255 else ""
        raise FacespotError(f"{what}: {img.dtype} pixel values span {lo:g}..{hi:g}; float images must be in 0..1{hint}")
    raise FacespotError(f"{what}: unsupported pixel type {img.dtype}")


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
    img = _to_rgb(_to_uint8(img, path), path)
    return apply_orientation(img, exif_orientation(data))


def shrink_to(img: np.ndarray, max_side: int) -> tuple[np.ndarray, float, float]:
    """``img`` resized (area interpolation) so its long side is at most ``max_side``, never
    enlarged; returns ``(image, fx, fy)``, the per-axis factors that map its coordinates."""
    h, w = img.shape[:2]
    f = min(1.0, max_side / max(h, w))
    if f >= 1:
        return img, 1.0, 1.0
    nw, nh = max(int(round(w * f)), 1), max(int(round(h * f)), 1)
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA), nw / w, nh / h
