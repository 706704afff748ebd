"""read_image / image_size: always HxWx3 uint8 RGB, and every bad file named in the error."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from facespot.errors import FacespotError
from facespot.images import IMAGE_EXTENSIONS, image_size, is_image_file, read_image


def _write(path: Path, img: np.ndarray, *params: int) -> Path:
    assert cv2.imwrite(str(path), img, list(params))
    return path


def test_png_colour_is_returned_as_rgb(tmp_path: Path) -> None:
    bgr = np.zeros((5, 7, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's BGR order
    bgr[..., 2] = 10
    img = read_image(_write(tmp_path / "a.png", bgr))
    assert img.shape == (5, 7, 3) and img.dtype == np.uint8
    assert img[0, 0].tolist() == [10, 0, 200]  # R, G, B


def test_grayscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    img = read_image(_write(tmp_path / "g.png", gray))
    assert img.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], gray)


def test_alpha_is_dropped(tmp_path: Path) -> None:
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 1] = 99
    bgra[..., 3] = 0  # fully transparent: colour is kept, not composited
    img = read_image(_write(tmp_path / "a.png", bgra))
    assert img.shape == (4, 4, 3)
    assert img[2, 2].tolist() == [0, 99, 0]


def test_16_bit_keeps_top_byte(tmp_path: Path) -> None:
    img16 = np.full((3, 3), 0xAB12, np.uint16)
    img = read_image(_write(tmp_path / "d.png", img16))
    assert img.dtype == np.uint8 and img.shape == (3, 3, 3)
    assert int(img[0, 0, 0]) == 0xAB


def test_jpeg_roundtrip_size(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.jpg", np.full((30, 40, 3), 128, np.uint8))
    assert read_image(path).shape == (30, 40, 3)
    assert image_size(path) == (40, 30)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FacespotError, match=r"nope\.jpg: image file not found"):
        read_image(tmp_path / "nope.jpg")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.jpg").write_bytes(b"")
    with pytest.raises(FacespotError, match=r"e\.jpg: image file is empty"):
        read_image(tmp_path / "e.jpg")


def test_garbage_file(tmp_path: Path) -> None:
    (tmp_path / "g.png").write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(FacespotError, match=r"g\.png: cannot decode image"):
        read_image(tmp_path / "g.png")


def test_truncated_jpeg_is_rejected(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = _write(tmp_path / "t.jpg", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FacespotError, match=r"t\.jpg: truncated JPEG"):
        read_image(path)


def test_truncated_png_is_rejected(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = _write(tmp_path / "t.png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FacespotError, match=r"t\.png: cannot decode"):
        read_image(path)


def test_pixel_limit(tmp_path: Path) -> None:
    path = _write(tmp_path / "big.png", np.zeros((20, 30, 3), np.uint8))
    assert read_image(path, max_pixels=600).shape == (20, 30, 3)
    with pytest.raises(FacespotError, match=r"big\.png: image is 30x20 = 600 pixels, over the limit of 599"):
        read_image(path, max_pixels=599)


def test_pixel_limit_checked_from_header_before_decoding(tmp_path: Path) -> None:
    # A PNG header claiming 100000 x 100000 pixels with no data: refused by size, not by decode.
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    (tmp_path / "bomb.png").write_bytes(header + b"\x00" * 8)
    with pytest.raises(FacespotError, match=r"bomb\.png: image is 100000x100000"):
        read_image(tmp_path / "bomb.png")
    assert image_size(tmp_path / "bomb.png") == (100000, 100000)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(FacespotError, match="expected an image file"):
        read_image(tmp_path)


def test_image_size_png_and_bmp_fallback(tmp_path: Path) -> None:
    assert image_size(_write(tmp_path / "a.png", np.zeros((11, 13), np.uint8))) == (13, 11)
    assert image_size(_write(tmp_path / "a.bmp", np.zeros((7, 9, 3), np.uint8))) == (9, 7)
    with pytest.raises(FacespotError, match="not found"):
        image_size(tmp_path / "none.png")


def test_image_size_skips_exif_thumbnail(tmp_path: Path) -> None:
    # An APP1 segment holding a fake SOF0 (a thumbnail's 8x8) must not be taken for the image.
    main = cv2.imencode(".jpg", np.zeros((21, 34, 3), np.uint8))[1].tobytes()
    fake_sof = b"\xff\xc0\x00\x11\x08\x00\x08\x00\x08\x03\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    payload = b"Exif\x00\x00" + fake_sof
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    (tmp_path / "exif.jpg").write_bytes(main[:2] + app1 + main[2:])
    assert image_size(tmp_path / "exif.jpg") == (34, 21)
    assert read_image(tmp_path / "exif.jpg").shape == (21, 34, 3)


def test_extensions() -> None:
    assert ".jpg" in IMAGE_EXTENSIONS and ".png" in IMAGE_EXTENSIONS
    assert is_image_file("a/B.JPG") and not is_image_file("a/b.txt")
