"""Uploaded bytes -> displayed pixels (facespot.serve.decode): formats, EXIF orientation, limits."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from facespot.images import exif_orientation, header_size, read_image, sniff_format
from facespot.serve.decode import DecodeError, decode_upload, encode_like

from .conftest import PHOTOS
from .helpers import encode, jpeg_with_orientation, png_bomb_header, png_with_orientation, stored_for

BIG = 10**9


def pattern(h=30, w=50) -> np.ndarray:
    """An asymmetric BGR test card: every flip and rotation of it is different."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 3, : w // 4] = (0, 0, 255)
    img[-h // 4 :, w // 2 :] = (255, 0, 0)
    img[h // 2, :, 1] = 255
    return img


def test_same_pixels_as_read_image_for_a_plain_jpeg():
    data = (PHOTOS / "astronaut.jpg").read_bytes()
    up = decode_upload(data, BIG)
    assert (up.format, up.width, up.height, up.orientation, up.gray, up.alpha) == ("jpeg", 512, 512, 1, False, None)
    np.testing.assert_array_equal(up.rgb, read_image(PHOTOS / "astronaut.jpg"))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(orientation):
    PIL = pytest.importorskip("PIL.Image")
    from PIL import ImageOps

    stored = pattern()
    png = png_with_orientation(encode(stored, ".png"), orientation)  # lossless: exact comparison
    up = decode_upload(png, BIG)
    assert up.orientation == orientation
    expected = np.asarray(ImageOps.exif_transpose(PIL.open(io.BytesIO(png))).convert("RGB"))
    np.testing.assert_array_equal(up.rgb, expected)
    # and the tests' own inverse (used to build sideways uploads) undoes it exactly
    np.testing.assert_array_equal(decode_upload(png_with_orientation(encode(stored_for(stored, orientation), ".png"), orientation), BIG).rgb, stored[:, :, ::-1])


def test_jpeg_orientation_6_is_displayed_upright():
    upright = cv2.imread(str(PHOTOS / "grace_hopper.jpg"))  # 512 wide, 600 tall
    data = jpeg_with_orientation(encode(stored_for(upright, 6), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 98]), 6)
    assert exif_orientation(data) == 6 and header_size(data, "jpeg") == (600, 512)  # stored sideways
    up = decode_upload(data, BIG)
    assert (up.width, up.height) == (512, 600)
    assert np.abs(up.rgb.astype(int) - upright[:, :, ::-1]).mean() < 3


@pytest.mark.parametrize("ext", [".png", ".webp", ".bmp", ".tiff"])
def test_header_size_of_every_format(ext):
    img = pattern(37, 53)
    data = encode(img, ext)
    fmt = sniff_format(data)
    assert header_size(data, fmt) == (53, 37)
    assert decode_upload(data, BIG).rgb.shape == (37, 53, 3)


def test_lossless_webp_header():
    data = encode(pattern(37, 53), ".webp", [cv2.IMWRITE_WEBP_QUALITY, 101])  # >100: lossless (VP8L)
    assert data[12:16] == b"VP8L" and header_size(data, "webp") == (53, 37)


def test_alpha_and_gray_survive_a_round_trip():
    bgra = np.dstack([pattern(), np.tile(np.arange(50, dtype=np.uint8) * 5, (30, 1))])
    up = decode_upload(encode(bgra, ".png"), BIG)
    assert up.alpha is not None and not up.gray
    back = cv2.imdecode(np.frombuffer(encode_like(up, up.rgb), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back, bgra)
    gray = (PHOTOS / "cameraman.jpg").read_bytes()
    up = decode_upload(gray, BIG)
    assert up.gray and up.rgb.shape == (512, 512, 3)
    back = cv2.imdecode(np.frombuffer(encode_like(up, up.rgb), np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.shape == (512, 512)


def test_sixteen_bit_png_becomes_eight_bit():
    img = (pattern().astype(np.uint16) * 257)
    up = decode_upload(encode(img, ".png"), BIG)
    np.testing.assert_array_equal(up.rgb, pattern()[:, :, ::-1])


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"hello, this is text", "not an image"),
        (b"GIF89a" + b"\x00" * 40, "not an image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 20, "corrupt JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "corrupt PNG"),
    ],
)
def test_refusals_are_400(data, words):
    with pytest.raises(DecodeError, match=words) as err:
        decode_upload(data, BIG)
    assert err.value.status == 400


def test_truncated_jpeg_is_400():
    data = (PHOTOS / "astronaut.jpg").read_bytes()
    with pytest.raises(DecodeError, match="truncated JPEG") as err:
        decode_upload(data[: len(data) // 2], BIG)
    assert err.value.status == 400


def test_truncated_png_is_400():
    data = encode(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8), ".png")
    with pytest.raises(DecodeError) as err:
        decode_upload(data[: len(data) // 2], BIG)
    assert err.value.status == 400


def test_pixel_limit_is_checked_on_the_header_before_decoding():
    with pytest.raises(DecodeError, match="30000x30000") as err:
        decode_upload(png_bomb_header(30000, 30000), 50_000_000)  # would be 2.7 GB of RGB
    assert err.value.status == 413
    with pytest.raises(DecodeError, match="over this server's limit") as err:
        decode_upload((PHOTOS / "astronaut.jpg").read_bytes(), 512 * 512 - 1)
    assert err.value.status == 413
    assert decode_upload((PHOTOS / "astronaut.jpg").read_bytes(), 512 * 512).width == 512
