"""The one in-memory decoder (facespot.images): sniff_format, header_size, decode_pixels,
decode_image, to_rgb, TooManyPixels; read_image is decode_image of a file's bytes.

Decompression bombs are built by hand: a header declaring far more pixels than the limit,
with no pixel data behind it, must be refused from the header, before OpenCV is called."""

from __future__ import annotations

import pickle
import re
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

import facespot.images as images
from facespot.errors import FacespotError
from facespot.images import (
    DEFAULT_MAX_PIXELS,
    TooManyPixels,
    decode_image,
    decode_pixels,
    header_size,
    read_image,
    sniff_format,
    to_rgb,
)

PHOTO = Path(__file__).resolve().parent / "fixtures" / "photos" / "astronaut.jpg"


def encode(img: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, img, params or [])
    assert ok
    return buf.tobytes()


def card(h: int = 23, w: int = 31) -> np.ndarray:
    """An asymmetric BGR test card."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 3, : w // 4] = (0, 0, 255)
    img[-h // 4 :, w // 2 :] = (255, 0, 0)
    img[h // 2, :, 1] = 255
    return img


# ---------------------------------------------------------------------- hand-built headers


def bmp(width: int, height: int, pixels: bytes = b"") -> bytes:
    """A 24-bit BITMAPINFOHEADER BMP declaring ``width x height`` (negative height: top-down)."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + len(pixels), 0, 0, 14 + len(info)) + info + pixels


def riff_webp(chunk: bytes, body: bytes) -> bytes:
    data = b"WEBP" + chunk + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1)
    return b"RIFF" + struct.pack("<I", len(data)) + data


def webp_vp8x(width: int, height: int) -> bytes:
    """Extended WebP: the VP8X canvas size (24 bits each, minus one), no image chunk."""
    return riff_webp(b"VP8X", b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little"))


def webp_vp8(width: int, height: int) -> bytes:
    """Lossy WebP: frame tag, start code, 14-bit width and height, then a stub."""
    return riff_webp(b"VP8 ", b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 16)


def webp_vp8l(width: int, height: int) -> bytes:
    """Lossless WebP: signature 0x2f, then 14 bits each of width-1 and height-1."""
    bits = (width - 1) | ((height - 1) << 14)
    return riff_webp(b"VP8L", b"\x2f" + struct.pack("<I", bits) + b"\x00" * 16)


def tiff(width: int, height: int) -> bytes:
    """A little-endian TIFF whose IFD0 holds ImageWidth (SHORT) and ImageLength (LONG) only."""
    entries = struct.pack("<HHIHH", 256, 3, 1, width, 0) + struct.pack("<HHII", 257, 4, 1, height)
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2) + entries + struct.pack("<I", 0) + b"\x00" * 16


def png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\x00" * 12


def jpeg(width: int, height: int) -> bytes:
    """SOI, a one-component SOF0 declaring ``width x height``, an SOS, a stub scan and EOI."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + sof + sos + b"\x00" * 16 + b"\xff\xd9"


BOMBS = {  # name: (data, the size its header declares)
    "jpeg": (jpeg(65_000, 60_000), (65_000, 60_000)),
    "png": (png(100_000, 100_000), (100_000, 100_000)),
    "webp-vp8x": (webp_vp8x(20_000, 20_000), (20_000, 20_000)),
    "webp-vp8": (webp_vp8(16_000, 15_000), (16_000, 15_000)),
    "webp-vp8l": (webp_vp8l(16_000, 15_000), (16_000, 15_000)),
    "bmp": (bmp(20_000, 20_000), (20_000, 20_000)),
    "bmp-top-down": (bmp(20_000, -20_000), (20_000, 20_000)),
    "tiff": (tiff(60_000, 60_000), (60_000, 60_000)),
}


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if OpenCV is asked to decode anything."""

    def refuse(*args, **kwargs):
        raise AssertionError("cv2.imdecode was called: the header check should have refused first")

    monkeypatch.setattr(images.cv2, "imdecode", refuse)


# ---------------------------------------------------------------------- sniff_format / header_size


@pytest.mark.parametrize("ext, fmt", [(".jpg", "jpeg"), (".png", "png"), (".webp", "webp"), (".bmp", "bmp"), (".tiff", "tiff")])
def test_sniff_format_and_header_size_of_encoded_images(ext, fmt):
    data = encode(card(23, 31), ext)
    assert sniff_format(data) == fmt
    assert header_size(data, fmt) == header_size(data) == (31, 23)  # fmt=None sniffs


@pytest.mark.parametrize("data", [b"", b"GIF89a" + b"\x00" * 40, b"hello", b"BM", encode(card()[:, :, 0], ".pgm")])
def test_sniff_format_is_none_for_the_rest(data):
    assert sniff_format(data) is None and header_size(data) is None


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_hand_built_headers_are_read(name):
    data, size = BOMBS[name]
    assert sniff_format(data) == name.split("-")[0] and header_size(data) == size


def test_hand_built_bmp_is_a_real_bmp():
    """The BMP builder writes what OpenCV reads: so its bomb is a real header, not a lucky refusal."""
    rows = [bytes([0, 0, 255] * 3) + b"\x00\x00\x00", bytes([255, 0, 0] * 3) + b"\x00\x00\x00"]  # bottom-up, 4-byte rows
    data = bmp(3, 2, b"".join(rows))
    assert header_size(data) == (3, 2)
    rgb = decode_image(data)
    assert rgb.shape == (2, 3, 3) and rgb[0, 0].tolist() == [0, 0, 255] and rgb[1, 0].tolist() == [255, 0, 0]


def test_unreadable_headers_are_none():
    assert header_size(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "png") is None  # no IHDR
    assert header_size(riff_webp(b"ALPH", b"\x00" * 12)) is None  # no image chunk first
    assert header_size(b"II*\x00" + struct.pack("<I", 4000)) is None  # IFD past the end
    assert header_size(b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 20) is None  # no SOF
    assert header_size(encode(card(), ".png"), "bmp") is not None  # fmt is trusted as given


# ---------------------------------------------------------------------- pixel limits


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bombs_are_refused_from_the_header_without_decoding(tmp_path, no_decoding, name):
    data, (w, h) = BOMBS[name]
    with pytest.raises(TooManyPixels, match=rf"^bomb\.bin: image is {w}x{h} = {w * h} pixels, over the limit of 80000000$"):
        decode_image(data, what="bomb.bin")
    path = tmp_path / f"{name}.img"
    path.write_bytes(data)
    with pytest.raises(FacespotError, match=rf"{name}\.img: image is {w}x{h} = {w * h} pixels, over the limit of {DEFAULT_MAX_PIXELS}"):
        read_image(path)


def test_header_limit_is_exact(no_decoding):
    with pytest.raises(TooManyPixels) as err:
        decode_pixels(webp_vp8l(40, 30), max_pixels=1199)
    assert (err.value.width, err.value.height, err.value.limit) == (40, 30, 1199)
    assert str(err.value) == "image: image is 40x30 = 1200 pixels, over the limit of 1199"


def test_limit_is_checked_again_after_decoding():
    """A format whose header is not read here (PGM) is still held to the limit once decoded."""
    data = encode(card(20, 30)[:, :, 0], ".pgm")
    assert sniff_format(data) is None and decode_image(data, max_pixels=600).shape == (20, 30, 3)
    with pytest.raises(TooManyPixels, match="pgm data: image is 30x20 = 600 pixels, over the limit of 599"):
        decode_image(data, max_pixels=599, what="pgm data")


def test_too_many_pixels_is_a_facespot_error_that_pickles():
    err = TooManyPixels(Path("a/b.png"), 300, 200, 1000)
    assert isinstance(err, FacespotError)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is TooManyPixels and str(back) == str(err) == "a/b.png: image is 300x200 = 60000 pixels, over the limit of 1000"
    assert (back.width, back.height, back.limit) == (300, 200, 1000)


# ---------------------------------------------------------------------- refusals name `what`


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "image is empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "corrupt PNG (cannot read the image size"),
        (png(0, 10), "corrupt PNG (its header states a zero size 0x10)"),
        (bmp(5, 0), "corrupt BMP (its header states a zero size 5x0)"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 20, "corrupt JPEG"),
        (PHOTO.read_bytes()[:5000], "truncated JPEG"),
        (png(8, 8), "cannot decode image (corrupt or truncated PNG data)"),
        (b"not an image at all" * 5, "cannot decode image (unknown format"),
    ],
)
def test_refusals_name_what(data, words):
    with pytest.raises(FacespotError, match="^the thing: " + re.escape(words)):
        decode_image(data, what="the thing")


# ---------------------------------------------------------------------- pixels


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".bmp", ".tiff"])
def test_decode_image_is_read_image_of_the_bytes(tmp_path, ext):
    data = encode(card(), ext)
    path = tmp_path / f"x{ext}"
    path.write_bytes(data)
    rgb = decode_image(data)
    assert rgb.shape == (23, 31, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, read_image(path))


def test_decode_pixels_keeps_the_stored_layout():
    bgra = np.dstack([card(), np.full(card().shape[:2], 77, np.uint8)])
    assert decode_pixels(encode(bgra, ".png")).shape == (23, 31, 4)
    assert decode_pixels(encode(card()[:, :, 0], ".png")).shape == (23, 31)
    sixteen = decode_pixels(encode(card().astype(np.uint16) * 257, ".png"))
    assert sixteen.dtype == np.uint8
    np.testing.assert_array_equal(sixteen, card())


def test_decode_image_applies_exif_orientation_6():
    """Orientation 6 (stored sideways, turned clockwise to display): decode_pixels as stored, decode_image upright."""
    stored = np.ascontiguousarray(np.rot90(card(), 1))  # 31 tall, 23 wide
    exif = b"MM\x00*" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack(">I", 0)
    chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif + struct.pack(">I", zlib.crc32(b"eXIf" + exif))
    plain = encode(stored, ".png")
    data = plain[:33] + chunk + plain[33:]  # after the signature and IHDR, before the image data
    assert header_size(data) == (23, 31)
    np.testing.assert_array_equal(decode_pixels(data), stored)
    np.testing.assert_array_equal(decode_image(data), card()[:, :, ::-1])


def test_to_rgb_layouts():
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    for img in (gray, gray[:, :, None], np.dstack([gray, gray])):
        np.testing.assert_array_equal(to_rgb(img), np.dstack([gray] * 3))
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., 0] = 9  # blue
    assert to_rgb(bgra)[0, 0].tolist() == [0, 0, 9]
    with pytest.raises(FacespotError, match="odd: unsupported image with 5 channels"):
        to_rgb(np.zeros((2, 3, 5), np.uint8), "odd")
    with pytest.raises(FacespotError, match="odd: unsupported image layout"):
        to_rgb(np.zeros((2, 3, 3, 1), np.uint8), "odd")
