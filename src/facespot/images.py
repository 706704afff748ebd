"""Decoding images: one strict decoder, so every caller sees the same pixels.

:func:`decode_image` turns encoded bytes held in memory (an HTTP upload, a packed image, a
file's contents) into an ``HxWx3`` ``uint8`` **RGB** array, whatever they held (grayscale,
alpha, 16 bits); :func:`read_image` is the same for a file (training, evaluation, statistics,
detection). Anything that cannot be decoded raises :class:`~facespot.errors.FacespotError`
naming the image, so a trainer can skip it and say which one it was instead of crashing on
``None``.

Checks, in order (:func:`decode_pixels`): empty data; the format (:func:`sniff_format`: JPEG,
PNG, WebP, BMP, TIFF by their first bytes; other data goes to OpenCV as it is); for those five,
the size is read from the header (:func:`header_size`) **before anything is decoded**, so an
image over ``max_pixels`` (a decompression bomb: a few KB of PNG that inflate to gigabytes)
is refused without allocating its pixels (:class:`TooManyPixels`), and an unreadable or zero
size is refused as corrupt; a JPEG must have image data and its end marker (libjpeg fills a
truncated scan with grey and still "succeeds"); then OpenCV decodes, and the decoded size is
checked against the limit again (the header may lie, and other formats have none read here).

Orientation: images are returned as *displayed*: the EXIF orientation tag (JPEG ``APP1``,
PNG ``eXIf``, WebP ``EXIF``, a TIFF's own tag) is applied, as browsers, phones and photo
viewers do -- phones often store a portrait photo sideways with orientation 6. Detection
boxes, saved images and :func:`image_size` (which reads the tag from the header too) all
refer to the photo as the user sees it. OpenCV's ``IMREAD_UNCHANGED`` (needed for 16-bit and
alpha) ignores the tag of JPEG, PNG and WebP but its TIFF decoder applies it itself (4.13 and
5.1 alike, whatever the flags), so the tag is read here and applied exactly once: whether this
OpenCV already did is found out from a tiny sample of each format and orientation
(:func:`opencv_applies_orientation`), never assumed from a version number.

Pixel types (:func:`to_uint8`): ``uint8`` as is; ``uint16`` keeps the top 8 bits (16-bit
PNG / TIFF); other integer types are taken by their value range and must lie in 0..255;
floating point must be finite and in 0..1. Anything else is a :class:`FacespotError`, never a
silently wrong picture.
"""

from __future__ import annotations

import functools
import struct
import zlib
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


class TooManyPixels(FacespotError):
    """An image over the pixel limit: ``width`` x ``height`` (as stored) against ``limit``.

    A :class:`FacespotError` like every other refusal; its own type so that a caller can
    answer it differently (the server says 413 rather than 400)."""

    def __init__(self, what: str | Path, width: int, height: int, limit: int) -> None:
        super().__init__(f"{what}: image is {width}x{height} = {width * height} pixels, over the limit of {limit}")
        self.what, self.width, self.height, self.limit = what, int(width), int(height), int(limit)

    def __reduce__(self):  # picklable (worker processes, Ray) although __init__ takes four arguments
        return type(self), (self.what, self.width, self.height, self.limit)


def is_image_file(path: str | Path) -> bool:
    """True when the name ends with one of :data:`IMAGE_EXTENSIONS`."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


# ---------------------------------------------------------------------- container structure


def _jpeg_segments(data: bytes):
    """``(marker, offset)`` of each JPEG marker segment after SOI, up to and including the first
    SOS (start of scan: entropy-coded data follows); stops at anything that is not a marker.

    Walking segments (rather than searching bytes) skips EXIF thumbnails, whose own SOF/EOI
    markers would mislead.
    """
    pos, n = 2, len(data)
    while pos + 4 <= n and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # stand-alone markers
            pos += 2
            continue
        yield marker, pos
        if marker == 0xDA:
            return
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        pos += 2 + length


def _jpeg_header(data: bytes) -> tuple[tuple[int, int] | None, int | None]:
    """``((w, h) or None, offset of the first SOS or None)`` of a JPEG."""
    size = None
    for marker, pos in _jpeg_segments(data):
        if marker in _JPEG_SOF and pos + 9 <= len(data):
            h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
            size = (w, h)
        elif marker == 0xDA:
            return size, pos
    return size, None


def _tiff_tags(tiff: bytes, wanted: set[int]) -> dict[int, int]:
    """Integer values of the ``wanted`` tags in IFD0 of a TIFF structure (an EXIF block is one)."""
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
        if tag in wanted and tag not in out and n >= 1:
            if kind == 3:  # SHORT, stored left-justified in the value field
                out[tag] = struct.unpack(e + "H", tiff[pos + 8 : pos + 10])[0]
            elif kind == 4:  # LONG
                out[tag] = struct.unpack(e + "I", tiff[pos + 8 : pos + 12])[0]
            if len(out) == len(wanted):
                break
    return out


def _webp_chunks(data: bytes):
    """``(fourcc, body)`` of each chunk of a RIFF WebP."""
    pos, n = 12, len(data)
    while pos + 8 <= n:
        kind, length = struct.unpack("<4sI", data[pos : pos + 8])
        yield kind, data[pos + 8 : pos + 8 + length]
        pos += 8 + length + (length & 1)


def sniff_format(data: bytes) -> str | None:
    """The format named by the first bytes: ``"jpeg"``, ``"png"``, ``"webp"``, ``"bmp"``,
    ``"tiff"``, or None for anything else (never guessed from a file name)."""
    if data[:2] == b"\xff\xd8":
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


def header_size(data: bytes, fmt: str | None = None) -> tuple[int, int] | None:
    """``(width, height)`` as stored (before EXIF orientation), read from the header only.

    ``fmt`` is a :func:`sniff_format` name (sniffed when None). None when the format is not
    one of those or its header is unreadable; nothing is decoded either way.
    """
    fmt = sniff_format(data) if fmt is None else fmt
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
            for kind, body in _webp_chunks(data):  # the first chunk says it
                if kind == b"VP8X" and len(body) >= 10:  # extended: the canvas
                    return 1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little")
                if kind == b"VP8 " and len(body) >= 10:  # lossy: after the frame tag and start code
                    w, h = struct.unpack("<HH", body[6:10])
                    return w & 0x3FFF, h & 0x3FFF
                if kind == b"VP8L" and len(body) >= 5:  # lossless: 14 bits each, minus one
                    (bits,) = struct.unpack("<I", body[1:5])
                    return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
                return None
            return None
        if fmt == "bmp":
            (dib,) = struct.unpack("<I", data[14:18])
            if dib == 12:  # OS/2 BITMAPCOREHEADER: unsigned 16 bits
                w, h = struct.unpack("<HH", data[18:22])
            else:  # negative height: stored top-down
                w, h = struct.unpack("<ii", data[18:26])
            return abs(int(w)), abs(int(h))
        if fmt == "tiff":
            tags = _tiff_tags(data, {256, 257})  # ImageWidth, ImageLength
            return (tags[256], tags[257]) if 256 in tags and 257 in tags else None
    except struct.error:
        return None
    return None


# ---------------------------------------------------------------------- EXIF orientation


def _jpeg_exif(data: bytes) -> bytes | None:
    for marker, pos in _jpeg_segments(data):
        if marker == 0xE1:
            (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
            body = data[pos + 4 : pos + 2 + length]
            if body.startswith(b"Exif\x00\x00"):
                return body[6:]
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
    for kind, body in _webp_chunks(data):
        if kind == b"EXIF":
            return body[6:] if body.startswith(b"Exif\x00\x00") else body
    return None


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of an encoded JPEG, PNG, WebP or TIFF; 1 when absent or malformed."""
    try:
        fmt = sniff_format(data)
        if fmt == "jpeg":
            exif = _jpeg_exif(data)
        elif fmt == "png":
            exif = _png_exif(data)
        elif fmt == "webp":
            exif = _webp_exif(data)
        elif fmt == "tiff":
            exif = data
        else:
            return 1
        value = _tiff_tags(exif, {0x0112}).get(0x0112, 1) if exif else 1
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


def _exif_tiff(orientation: int, e: str = "<") -> bytes:
    """A minimal EXIF (TIFF) block: IFD0 with one entry, Orientation."""
    head = (b"II" if e == "<" else b"MM") + struct.pack(e + "HI", 42, 8)
    return head + struct.pack(e + "H", 1) + struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(e + "I", 0)


def _oriented_sample(fmt: str, bgr: np.ndarray, orientation: int) -> bytes | None:
    """``bgr`` (uint8, 3 channels) encoded as ``fmt`` with an EXIF orientation tag; None for
    formats that carry none (BMP) or that this OpenCV cannot encode."""
    h, w = bgr.shape[:2]
    if fmt == "tiff":  # uncompressed baseline RGB, one strip; OpenCV's encoder writes no orientation
        entries = [(256, 4, w), (257, 4, h), (258, 3, 8), (259, 3, 1), (262, 3, 2), (273, 4, 0), (274, 3, orientation),
                   (277, 3, 3), (278, 4, h), (279, 4, w * h * 3), (284, 3, 1)]  # fmt: skip
        pixels_at = 8 + 2 + 12 * len(entries) + 4 + 8  # after the IFD and BitsPerSample's three values
        ifd = struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            if tag == 258:  # three SHORTs: stored after the IFD
                ifd += struct.pack("<HHII", tag, kind, 3, pixels_at - 8)
            elif tag == 273:
                ifd += struct.pack("<HHII", tag, kind, 1, pixels_at)
            else:
                ifd += struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
        head = b"II" + struct.pack("<HI", 42, 8)
        return head + ifd + struct.pack("<I", 0) + struct.pack("<4H", 8, 8, 8, 0) + np.ascontiguousarray(bgr[:, :, ::-1]).tobytes()
    ext = {"jpeg": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 100]), "png": (".png", []), "webp": (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101])}
    if fmt not in ext:
        return None
    try:
        ok, buf = cv2.imencode(ext[fmt][0], bgr, ext[fmt][1])
    except cv2.error:
        return None
    if not ok:
        return None
    data = buf.tobytes()
    if fmt == "jpeg":
        body = b"Exif\x00\x00" + _exif_tiff(orientation, ">")
        return data[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + data[2:]
    if fmt == "png":
        exif = _exif_tiff(orientation)
        chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif + struct.pack(">I", zlib.crc32(b"eXIf" + exif) & 0xFFFFFFFF)
        return data[:33] + chunk + data[33:]  # after the signature and IHDR
    chunks = list(_webp_chunks(data))  # a simple WebP: one image chunk; EXIF needs the extended form
    if len(chunks) != 1:
        return None
    exif = b"Exif\x00\x00" + _exif_tiff(orientation)
    vp8x = struct.pack("<B3x", 0x08) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    body = b"WEBP"
    for kind, payload in ((b"VP8X", vp8x), chunks[0], (b"EXIF", exif)):
        body += kind + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


@functools.lru_cache(maxsize=None)
def opencv_applies_orientation(fmt: str | None, orientation: int) -> bool:
    """True when this OpenCV's ``IMREAD_UNCHANGED`` decode of ``fmt`` (a :func:`sniff_format`
    name) already turns the pixels by the EXIF ``orientation``.

    Found out once per process by decoding a tiny oriented sample (six flat 16x16 blocks of
    distinct colours, so every turn, mirror and a red/blue swap show), because OpenCV changes
    this between releases and formats: its TIFF decoder applies the tag (4.13, 5.1), its JPEG,
    PNG and WebP decoders do not under ``IMREAD_UNCHANGED``.
    """
    if fmt is None or orientation == 1:
        return False
    blocks = np.array([[[0, 40, 250], [90, 200, 10]], [[250, 120, 60], [30, 90, 160]], [[200, 0, 120], [120, 250, 0]]], np.uint8)
    stored = np.repeat(np.repeat(blocks, 16, axis=0), 16, axis=1)  # 48 x 32, BGR
    data = _oriented_sample(fmt, stored, orientation)
    if data is None:
        return False
    got = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    shown = apply_orientation(stored, orientation)
    if got is None or got.shape != shown.shape:
        return False
    centres = (slice(8, None, 16), slice(8, None, 16))  # block centres: JPEG blurs colour across block edges
    return bool(np.abs(got[centres].astype(np.int16) - shown[centres]).max() <= 24)


def orient_decoded(img: np.ndarray, data: bytes) -> np.ndarray:
    """Pixels as OpenCV decoded ``data`` -> as displayed: the EXIF orientation applied unless
    OpenCV applied it already (:func:`opencv_applies_orientation`)."""
    orientation = exif_orientation(data)
    if orientation == 1 or opencv_applies_orientation(sniff_format(data), orientation):
        return img
    return apply_orientation(img, orientation)


# ---------------------------------------------------------------------- sizes of files


def _header_size(path: Path) -> tuple[int, int] | None:
    """``(w, h)`` as displayed (EXIF orientation applied) from a JPEG or PNG header without
    decoding pixels; None for other formats."""
    with open(path, "rb") as f:
        head = f.read(65536)
        fmt = sniff_format(head)
        if fmt not in ("jpeg", "png"):  # a WebP's EXIF follows its pixels, a TIFF's IFD may too
            return None
        size = header_size(head, fmt)
        if size is None and fmt == "jpeg" and len(head) == 65536:  # large APP segments (EXIF, ICC): read on
            head += f.read()
            size = header_size(head, fmt)
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


# ---------------------------------------------------------------------- pixels


def to_uint8(img: np.ndarray, what: str | Path = "image") -> np.ndarray:
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


def to_rgb(img: np.ndarray, what: str | Path = "image") -> np.ndarray:
    """OpenCV's ``uint8`` channels -> ``HxWx3`` RGB: gray replicated, BGR(A) reordered, alpha
    dropped (not composited). Any other layout is a :class:`FacespotError` naming ``what``."""
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.ndim != 3:
        raise FacespotError(f"{what}: unsupported image layout with shape {img.shape}")
    channels = img.shape[2]
    if channels == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 2:  # gray + alpha
        return cv2.cvtColor(np.ascontiguousarray(img[:, :, 0]), cv2.COLOR_GRAY2RGB)
    if channels == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if channels == 4:  # BGRA: alpha dropped, not composited
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    raise FacespotError(f"{what}: unsupported image with {channels} channels")


# ---------------------------------------------------------------------- decoding


def check_encoded(
    data: bytes, what: str | Path = "image", max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[str | None, tuple[int, int] | None]:
    """The checks made on encoded bytes before decoding, without decoding: empty data, a header
    without a size or with a zero size, over ``max_pixels``, a JPEG with no image data or cut
    short (no end-of-image marker: libjpeg would fill the missing scan with grey and "succeed").
    Returns the sniffed format and the header's size (None where unknown); a refusal raises
    :class:`FacespotError` naming ``what``. Why apart: ``facespot data stats`` checks thousands of
    files this way in seconds, where decoding them would take minutes."""
    if not data:
        raise FacespotError(f"{what}: image is empty (0 bytes)")
    fmt = sniff_format(data)
    size = None
    if fmt is not None:
        name = fmt.upper()
        size = header_size(data, fmt)
        if size is None:
            raise FacespotError(f"{what}: corrupt {name} (cannot read the image size from its header)")
        if size[0] <= 0 or size[1] <= 0:
            raise FacespotError(f"{what}: corrupt {name} (its header states a zero size {size[0]}x{size[1]})")
        if size[0] * size[1] > max_pixels:
            raise TooManyPixels(what, size[0], size[1], max_pixels)
    if fmt == "jpeg":
        _, sos = _jpeg_header(data)
        if sos is None:
            raise FacespotError(f"{what}: corrupt JPEG (no image data found after the header)")
        if data.find(b"\xff\xd9", sos) < 0:  # libjpeg fills a truncated scan with grey and "succeeds"
            raise FacespotError(f"{what}: truncated JPEG (the end-of-image marker is missing)")
    return fmt, size


def decode_pixels(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, what: str | Path = "image", keep_16_bits: bool = False
) -> np.ndarray:
    """Strictly decode encoded bytes to ``uint8`` samples as OpenCV decodes them, in its layout.

    ``HxW`` (gray), ``HxWx2`` (gray + alpha), ``HxWx3`` (BGR) or ``HxWx4`` (BGRA); the EXIF
    orientation may or may not be applied (OpenCV's TIFF decoder applies it, the others do
    not): :func:`orient_decoded` finishes the job. ``keep_16_bits``: ``uint16`` samples stay
    ``uint16`` (for writers that keep them). All the checks of :func:`decode_image` (see the module
    docstring) are made here; a refusal raises :class:`FacespotError` naming ``what``
    (:class:`TooManyPixels` for the pixel limit). For callers that need more than RGB (the
    server keeps alpha and grayscale to encode its answer alike); others use
    :func:`decode_image`.
    """
    fmt = check_encoded(data, what, max_pixels)[0]
    try:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise FacespotError(f"{what}: cannot decode image ({exc.msg.strip() if hasattr(exc, 'msg') else exc})") from exc
    if img is None:
        kind = f"corrupt or truncated {fmt.upper()} data" if fmt else "unknown format, corrupt or truncated data"
        raise FacespotError(f"{what}: cannot decode image ({kind})")
    if img.size == 0 or img.shape[0] == 0 or img.shape[1] == 0:
        raise FacespotError(f"{what}: image has zero size")
    if img.shape[0] * img.shape[1] > max_pixels:  # the header lied, or a format without one read here
        raise TooManyPixels(what, img.shape[1], img.shape[0], max_pixels)
    return img if keep_16_bits and img.dtype == np.uint16 else to_uint8(img, what)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, what: str | Path = "image") -> np.ndarray:
    """Decode encoded bytes (JPEG, PNG, WebP, BMP, TIFF or anything else OpenCV reads) to an
    ``HxWx3`` ``uint8`` RGB array as displayed (EXIF orientation applied).

    Grayscale is replicated to three channels, alpha is dropped, 16-bit samples keep their
    top 8 bits. Empty, corrupt or truncated data, or an image over ``max_pixels`` (from the
    header before decoding where the format's header is read, and after decoding), raises
    :class:`FacespotError` naming ``what``.
    """
    return orient_decoded(to_rgb(decode_pixels(data, max_pixels, what), what), data)


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to an ``HxWx3`` ``uint8`` RGB array: :func:`decode_image` of its bytes.

    A missing, unreadable or empty file, or one :func:`decode_image` refuses (corrupt,
    truncated, over ``max_pixels``), raises :class:`FacespotError` naming the file.
    """
    path = Path(path)
    return decode_image(_image_bytes(path), max_pixels, what=path)


def _image_bytes(path: Path) -> bytes:
    """An image file's bytes; a missing, unreadable or empty file is one line naming it."""
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
    return data


def read_pixels(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An image file's samples as displayed, in the file's own layout: ``HxW`` gray, ``HxWx3``
    RGB or ``HxWx4`` RGBA (gray with alpha becomes RGBA), ``uint8`` or ``uint16``. For writers
    that give back what came in (``facespot blur`` keeps alpha, gray and 16 bits, as the
    server does); :func:`read_image` is the 8-bit RGB every detector takes."""
    path = Path(path)
    data = _image_bytes(path)
    img = orient_decoded(decode_pixels(data, max_pixels, path, keep_16_bits=True), data)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 2:  # gray + alpha
        img = np.dstack([img[:, :, 0], img[:, :, 0], img[:, :, 0], img[:, :, 1]])
    elif img.ndim == 3:
        img = img[:, :, [2, 1, 0, 3][: img.shape[2]]]  # BGR(A) -> RGB(A)
    return np.ascontiguousarray(img)


def shrink_to(img: np.ndarray, max_side: int) -> tuple[np.ndarray, float, float]:
    """``img`` resized (area interpolation) so its long side is at most ``max_side``, never
    enlarged; returns ``(image, fx, fy)``, the per-axis factors that map its coordinates."""
    h, w = img.shape[:2]
    f = min(1.0, max_side / max(h, w))
    if f >= 1:
        return img, 1.0, 1.0
    nw, nh = max(int(round(w * f)), 1), max(int(round(h * f)), 1)
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA), nw / w, nh / h
