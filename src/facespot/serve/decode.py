"""Uploaded bytes -> pixels as the photo is displayed, and back to the same format.

The server never writes an upload to disk; it decodes the bytes in memory with
:func:`facespot.images.decode_pixels`, the decoder behind :func:`~facespot.images.read_image`
and :func:`~facespot.images.decode_image`, so an upload gets exactly the checks and pixels a
file gets: the size read from the header before anything is decoded (a decompression bomb is
refused without allocating its pixels), the strict JPEG checks, the same conversions, and the
EXIF orientation applied, so the pixels, the reported width and height and every box are in
the photo's *displayed* orientation -- what a browser shows. What is the server's own:

* only JPEG, PNG, WebP, BMP and TIFF are accepted (:func:`facespot.images.sniff_format`, by
  the first bytes, never by a name or a ``Content-Type``);
* every refusal is a :class:`DecodeError` carrying its HTTP status: 413 for an image over the
  server's pixel limit, 400 for the rest;
* :class:`Decoded` keeps the format, an alpha channel and grayness, so that
  :func:`encode_like` writes the result in the format that came in, at the displayed size,
  keeping alpha and grayscale; metadata (EXIF, GPS, ICC) is not copied, which is what an
  anonymised photo wants.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facespot.errors import FacespotError
from facespot.images import TooManyPixels, decode_pixels, exif_orientation, orient_decoded, sniff_format, to_rgb

FORMATS = {"jpeg": ("image/jpeg", ".jpg"), "png": ("image/png", ".png"), "webp": ("image/webp", ".webp"),
           "bmp": ("image/bmp", ".bmp"), "tiff": ("image/tiff", ".tiff")}  # fmt: skip
"""Accepted formats: :func:`~facespot.images.sniff_format` name -> (media type, OpenCV encoder extension)."""

WHAT = "uploaded image"
"""How refusals name the upload."""


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


# ---------------------------------------------------------------------- decode / encode


def decode_upload(data: bytes, max_pixels: int) -> Decoded:
    """Strictly decode an uploaded image; raise :class:`DecodeError` (400 / 413) on refusal."""
    if not data:
        raise DecodeError("empty upload: send the image as the multipart field 'image' or as the request body")
    fmt = sniff_format(data)
    if fmt not in FORMATS:
        raise DecodeError("not an image this server reads (JPEG, PNG, WebP, BMP or TIFF)")
    try:
        img = orient_decoded(decode_pixels(data, max_pixels, WHAT), data)  # uint8, channels as stored, displayed
        rgb = to_rgb(img, WHAT)
    except TooManyPixels as exc:
        raise DecodeError(
            f"image is {exc.width}x{exc.height} = {exc.width * exc.height} pixels, over this server's limit of {exc.limit}", 413
        ) from None
    except FacespotError as exc:
        raise DecodeError(str(exc)) from None
    gray = img.ndim == 2 or img.shape[2] in (1, 2)
    alpha = np.ascontiguousarray(img[:, :, -1]) if img.ndim == 3 and img.shape[2] in (2, 4) else None
    return Decoded(fmt, rgb, alpha, gray, exif_orientation(data))


def encode_like(upload: Decoded, rgb: np.ndarray, jpeg_quality: int = 95, fmt: str | None = None) -> bytes:
    """Encode ``rgb`` (the upload's displayed size) in the upload's format (or ``fmt``, one of
    :data:`FORMATS`), channels and alpha (where the format holds one)."""
    fmt = fmt or upload.format
    if upload.gray:
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    else:
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if upload.alpha is not None and fmt in ("png", "webp", "tiff"):
        if pixels.ndim == 2:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
        pixels = np.dstack([pixels, upload.alpha])
    params: list[int] = []
    if fmt == "jpeg":
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif fmt == "webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, int(jpeg_quality)]
    ok, buf = cv2.imencode(FORMATS[fmt][1], pixels, params)
    if not ok:  # pragma: no cover - OpenCV encodes every format it decodes
        raise RuntimeError(f"OpenCV could not encode {fmt}")
    return buf.tobytes()
