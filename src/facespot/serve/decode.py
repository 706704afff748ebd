"""Uploaded bytes -> pixels as the photo is displayed, and back to the same format.

The server never writes an upload to disk, so it cannot use
:func:`facespot.images.read_image` (which reads a path). This module does the same strict
decoding from memory -- the same OpenCV decoder and the same conversions
(:func:`facespot.images._to_uint8`, :func:`facespot.images._to_rgb`), the same truncated-JPEG
check -- plus two things an upload needs:

* **the size is read from the header before anything is decoded**, so an image over the
  pixel limit (a decompression bomb: a few KB of PNG that inflates to gigabytes) is refused
  without allocating its pixels;
* **the EXIF orientation is applied** (:func:`facespot.images.exif_orientation` and
  :func:`~facespot.images.apply_orientation`, as ``read_image`` does), so the pixels, the
  reported width and height and every box are in the photo's *displayed* orientation -- what a
  browser shows -- rather than in the stored one. Phone photos are often stored sideways with
  orientation 6.

Accepted: JPEG, PNG, WebP, BMP, TIFF (recognised by their first bytes, never by a name or a
``Content-Type``). :func:`encode_like` writes the result in the format that came in, at the
displayed size, keeping an alpha channel and grayscale; metadata (EXIF, GPS, ICC) is not
copied, which is what an anonymised photo wants.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

from facespot.images import _PNG_SIGNATURE, _jpeg_header, _to_rgb, _to_uint8, apply_orientation, exif_orientation

FORMATS = {"jpeg": ("image/jpeg", ".jpg"), "png": ("image/png", ".png"), "webp": ("image/webp", ".webp"),
           "bmp": ("image/bmp", ".bmp"), "tiff": ("image/tiff", ".tiff")}  # fmt: skip
"""Accepted formats: name -> (media type, OpenCV encoder extension)."""


class DecodeError(Exception):
    """The upload cannot be used; ``status`` is the HTTP status that says why (400 or 413)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Decoded:
    """An upload as displayed: ``rgb`` ``HxWx3`` uint8, plus what :func:`encode_like` needs."""

    format: str
    rgb: np.ndarray
    alpha: np.ndarray | None = None  # HxW uint8 when the upload had an alpha channel
    gray: bool = False  # the upload had one colour channel
    orientation: int = 1  # the EXIF orientation that was applied (1: none)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def media_type(self) -> str:
        return FORMATS[self.format][0]


def sniff(data: bytes) -> str | None:
    """The format named by the first bytes, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM" and len(data) >= 26:
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


# ---------------------------------------------------------------------- container structure


def _tiff_tags(tiff: bytes, wanted: set[int]) -> dict[int, int]:
    """Integer values of ``wanted`` tags in the first IFD of a TIFF structure."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return {}
    e = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(e + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return {}
    (count,) = struct.unpack(e + "H", tiff[ifd : ifd + 2])
    out: dict[int, int] = {}
    for k in range(count):
        pos = ifd + 2 + 12 * k
        if pos + 12 > len(tiff):
            break
        tag, kind, n = struct.unpack(e + "HHI", tiff[pos : pos + 8])
        if tag in wanted and n >= 1:
            if kind == 3:  # SHORT, stored left-justified in the value field
                out[tag] = struct.unpack(e + "H", tiff[pos + 8 : pos + 10])[0]
            elif kind == 4:  # LONG
                out[tag] = struct.unpack(e + "I", tiff[pos + 8 : pos + 12])[0]
    return out


def _webp_chunks(data: bytes):
    pos, n = 12, len(data)
    while pos + 8 <= n:
        kind, length = struct.unpack("<4sI", data[pos : pos + 8])
        yield kind, data[pos + 8 : pos + 8 + length]
        pos += 8 + length + (length & 1)


# ---------------------------------------------------------------------- sizes


def header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """``(width, height)`` as stored, from the header only; None when the header is unreadable."""
    try:
        if fmt == "jpeg":
            size, _ = _jpeg_header(data)
            return size
        if fmt == "png":
            if len(data) >= 24 and data[12:16] == b"IHDR":
                w, h = struct.unpack(">II", data[16:24])
                return int(w), int(h)
            return None
        if fmt == "webp":
            for kind, body in _webp_chunks(data):
                if kind == b"VP8X" and len(body) >= 10:
                    return 1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little")
                if kind == b"VP8 " and len(body) >= 10:
                    w, h = struct.unpack("<HH", body[6:10])
                    return w & 0x3FFF, h & 0x3FFF
                if kind == b"VP8L" and len(body) >= 5:
                    (bits,) = struct.unpack("<I", body[1:5])
                    return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
                return None
            return None
        if fmt == "bmp":
            (dib,) = struct.unpack("<I", data[14:18])
            if dib == 12:
                w, h = struct.unpack("<HH", data[18:22])
            else:
                w, h = struct.unpack("<ii", data[18:26])
            return abs(int(w)), abs(int(h))
        if fmt == "tiff":
            tags = _tiff_tags(data, {256, 257})
            return (tags[256], tags[257]) if 256 in tags and 257 in tags else None
    except struct.error:
        return None
    return None


def _pixel_error(w: int, h: int, max_pixels: int) -> DecodeError:
    return DecodeError(f"image is {w}x{h} = {w * h} pixels, over this server's limit of {max_pixels}", 413)


# ---------------------------------------------------------------------- decode / encode


def decode_upload(data: bytes, max_pixels: int) -> Decoded:
    """Strictly decode an uploaded image; raise :class:`DecodeError` (400 / 413) on refusal."""
    if not data:
        raise DecodeError("empty upload: send the image as the multipart field 'image' or as the request body")
    fmt = sniff(data)
    if fmt is None:
        raise DecodeError("not an image this server reads (JPEG, PNG, WebP, BMP or TIFF)")
    size = header_size(data, fmt)
    if size is None or size[0] <= 0 or size[1] <= 0:
        raise DecodeError(f"corrupt {fmt.upper()} (cannot read the image size from its header)")
    if size[0] * size[1] > max_pixels:
        raise _pixel_error(size[0], size[1], max_pixels)
    if fmt == "jpeg":
        _, sos = _jpeg_header(data)
        if sos is None:
            raise DecodeError("corrupt JPEG (no image data found after the header)")
        if data.find(b"\xff\xd9", sos) < 0:  # libjpeg fills a truncated scan with grey and "succeeds"
            raise DecodeError("truncated JPEG (the end-of-image marker is missing)")
    try:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise DecodeError(f"cannot decode the {fmt.upper()} image (corrupt or truncated)")
    if img.shape[0] * img.shape[1] > max_pixels:  # the header lied
        raise _pixel_error(img.shape[1], img.shape[0], max_pixels)
    orientation = exif_orientation(data)
    img = _to_uint8(img, f"the {fmt.upper()} upload")  # FacespotError (400) for pixel values it cannot take
    gray = img.ndim == 2 or img.shape[2] in (1, 2)
    alpha = None
    if img.ndim == 3 and img.shape[2] in (2, 4):
        alpha = apply_orientation(img[:, :, -1], orientation)
    try:
        rgb = _to_rgb(img, fmt.upper())
    except Exception as exc:  # FacespotError: an unsupported channel layout
        raise DecodeError(str(exc)) from None
    return Decoded(fmt, apply_orientation(rgb, orientation), alpha, gray, orientation)


def encode_like(upload: Decoded, rgb: np.ndarray, jpeg_quality: int = 95) -> bytes:
    """Encode ``rgb`` (the upload's displayed size) in the upload's format, channels and alpha."""
    if upload.gray:
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    else:
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if upload.alpha is not None and upload.format in ("png", "webp", "tiff"):
        if pixels.ndim == 2:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
        pixels = np.dstack([pixels, upload.alpha])
    params: list[int] = []
    if upload.format == "jpeg":
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif upload.format == "webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, int(jpeg_quality)]
    ok, buf = cv2.imencode(FORMATS[upload.format][1], pixels, params)
    if not ok:  # pragma: no cover - OpenCV encodes every format it decodes
        raise RuntimeError(f"OpenCV could not encode {upload.format}")
    return buf.tobytes()
