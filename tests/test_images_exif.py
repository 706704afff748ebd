"""EXIF orientation is applied wherever images are read (issue 11, item 3), and pixel types
are taken by their value range or refused, never guessed (item 4, file side)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from facespot.errors import FacespotError
from facespot.images import exif_orientation, image_size, read_image

PHOTO = Path(__file__).resolve().parent / "fixtures" / "photos" / "astronaut.jpg"

# stored pixels that each orientation turns into the displayed photo (the inverse transforms)
STORED = {
    1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, 1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, -1),
}  # fmt: skip


def exif_block(orientation: int, little_endian: bool = False) -> bytes:
    """A minimal TIFF structure: IFD0 with one entry, Orientation (0x0112, SHORT)."""
    e = "<" if little_endian else ">"
    head = (b"II" if little_endian else b"MM") + struct.pack(e + "HI", 42, 8)
    entry = struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0)
    return head + struct.pack(e + "H", 1) + entry + struct.pack(e + "I", 0)


def jpeg_with_orientation(pixels_bgr: np.ndarray, orientation: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(pixels_bgr), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    jpeg = buf.tobytes()
    body = b"Exif\x00\x00" + exif_block(orientation)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]  # APP1 right after SOI


def png_with_orientation(pixels_bgr: np.ndarray, orientation: int) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(pixels_bgr))
    assert ok
    png = buf.tobytes()
    data = exif_block(orientation, little_endian=True)
    chunk = struct.pack(">I", len(data)) + b"eXIf" + data + struct.pack(">I", zlib.crc32(b"eXIf" + data) & 0xFFFFFFFF)
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + chunk + png[ihdr_end:]


@pytest.fixture(scope="module")
def displayed():
    img = cv2.imread(str(PHOTO))
    return img[:, : img.shape[1] * 3 // 4]  # not square: a quarter turn shows in the size


@pytest.mark.parametrize("orientation", range(1, 9))
def test_read_image_applies_every_orientation(tmp_path, displayed, orientation):
    stored = STORED[orientation](displayed)
    p = tmp_path / "o.png"
    p.write_bytes(png_with_orientation(stored, orientation))  # lossless: exact pixels
    assert exif_orientation(p.read_bytes()) == orientation
    np.testing.assert_array_equal(read_image(p), displayed[:, :, ::-1])
    assert image_size(p) == (displayed.shape[1], displayed.shape[0])


def test_phone_photo_with_orientation_6(tmp_path, displayed):
    """A JPEG stored sideways with orientation 6: read, sized and detected as displayed."""
    import facespot
    from facespot.cli import main

    p = tmp_path / "phone.jpg"
    p.write_bytes(jpeg_with_orientation(STORED[6](displayed), 6))
    h, w = displayed.shape[:2]
    img = read_image(p)
    assert img.shape == (h, w, 3) and image_size(p) == (w, h)
    assert np.abs(img.astype(int) - displayed[:, :, ::-1].astype(int)).mean() < 3  # JPEG noise only
    faces = facespot.load()(p)
    expected = facespot.load()(displayed)
    assert len(faces) == len(expected) == 1
    np.testing.assert_allclose(faces[0].box, expected[0].box, atol=4)
    js, out = tmp_path / "f.jsonl", tmp_path / "out.jpg"
    assert main(["detect", str(p), "--json", str(js), "--save", str(out)]) == 0
    row = json.loads(js.read_text())
    assert (row["width"], row["height"]) == (w, h)
    assert cv2.imread(str(out)).shape == (h, w, 3)  # the saved image is upright


def test_malformed_or_absent_exif_is_orientation_1(displayed):
    assert exif_orientation(PHOTO.read_bytes()) == 1
    good = jpeg_with_orientation(displayed, 6)
    i = good.index(b"MM")
    assert exif_orientation(good[: i + 6]) == 1  # cut inside the TIFF header
    assert exif_orientation(good[:i] + b"XX" + good[i + 2 :]) == 1  # not a TIFF byte order
    assert exif_orientation(b"not an image") == 1


@pytest.mark.parametrize(
    "array,ok",
    [
        (np.full((8, 8), 200, np.int64), True),
        (np.full((8, 8), 0.5, np.float64), True),
        (np.full((8, 8), 200.0, np.float64), False),
        (np.full((8, 8), 300, np.int32), False),
        (np.full((8, 8), -1, np.int16), False),
        (np.full((8, 8), np.nan, np.float32), False),
    ],
)
def test_pixel_types_from_files(tmp_path, array, ok):
    """TIFF keeps the dtype: integers by their range, floats in 0..1, else a clear error."""
    p = tmp_path / "x.tiff"
    if not cv2.imwrite(str(p), array.astype(array.dtype if array.dtype != np.int64 else np.int32)):
        pytest.skip(f"this OpenCV cannot write {array.dtype} TIFF")
    if ok:
        img = read_image(p)
        assert img.dtype == np.uint8 and img.shape == (8, 8, 3) and int(img[0, 0, 0]) in (200, 128)
    else:
        with pytest.raises(FacespotError, match=str(p.name)):
            read_image(p)


# ---------------------------------------------------------------------- every format, real files


def pillow_oriented(path: Path, displayed_rgb: np.ndarray, orientation: int, mode: str = "RGB", **save) -> None:
    """Write ``displayed_rgb`` stored as ``orientation`` says, with Pillow (an independent writer):
    TIFF carries the tag in its own IFD, JPEG / PNG / WebP in an EXIF block."""
    from PIL import Image

    stored = np.ascontiguousarray(STORED[orientation](displayed_rgb))
    if mode == "RGB":
        im = Image.fromarray(stored)
    elif mode == "RGBA":
        im = Image.fromarray(np.dstack([stored, np.full(stored.shape[:2], 255, np.uint8)]))
    elif mode == "L":
        im = Image.fromarray(stored[:, :, 1].copy())
    else:  # "I;16": 16-bit gray
        im = Image.fromarray(stored[:, :, 1].astype(np.uint16) * 257)
    if path.suffix == ".tiff":
        im.save(path, tiffinfo={274: orientation}, **save)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(path, exif=exif, **save)


def _expect(displayed_rgb: np.ndarray, mode: str) -> np.ndarray:
    return displayed_rgb if mode in ("RGB", "RGBA") else np.repeat(displayed_rgb[:, :, 1:2], 3, axis=2)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("ext,save", [(".jpg", {"quality": 95}), (".png", {}), (".webp", {"lossless": True}), (".tiff", {})])
def test_every_format_reads_as_displayed(tmp_path, displayed, ext, save, orientation):
    """Oriented files of every format, as this OpenCV decodes them: the orientation is applied
    exactly once (OpenCV's TIFF decoder applies it itself; facespot adds it for the others)."""
    from PIL import Image, ImageOps

    rgb = np.ascontiguousarray(displayed[:, :, ::-1])
    p = tmp_path / f"o{ext}"
    pillow_oriented(p, rgb, orientation, **save)
    assert exif_orientation(p.read_bytes()) == orientation
    img = read_image(p)
    with Image.open(p) as im:  # what a viewer shows
        shown = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert img.shape == shown.shape == rgb.shape
    tol = 3 if ext == ".jpg" else 0
    assert np.abs(img.astype(int) - shown).mean() <= tol and np.abs(img.astype(int) - rgb).mean() <= tol
    assert image_size(p) == (rgb.shape[1], rgb.shape[0])


@pytest.mark.parametrize("orientation", [3, 6, 8])
@pytest.mark.parametrize("mode,save", [("RGB", {"compression": "tiff_lzw"}), ("RGB", {"compression": "jpeg"}), ("RGBA", {}),
                                       ("L", {}), ("I;16", {})])  # fmt: skip
def test_tiff_layouts_read_as_displayed(tmp_path, displayed, mode, save, orientation):
    rgb = np.ascontiguousarray(displayed[:, :, ::-1])
    p = tmp_path / "o.tiff"
    pillow_oriented(p, rgb, orientation, mode, **save)
    img = read_image(p)
    want = _expect(rgb, mode)
    assert img.shape == want.shape
    assert np.abs(img.astype(int) - want).mean() <= (3 if save.get("compression") == "jpeg" else 1)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_oriented_tiff_is_detected_and_blurred_upright(tmp_path, orientation):
    """The CLI on a phone-style TIFF: the face found where the viewer shows it, and blurred."""
    from facespot.cli import main

    upright = cv2.imread(str(PHOTO.parent / "grace_hopper.jpg"))  # 512 wide, 600 tall, one face
    p = tmp_path / "phone.tiff"
    pillow_oriented(p, np.ascontiguousarray(upright[:, :, ::-1]), orientation)
    js = tmp_path / "f.jsonl"
    assert main(["detect", str(p), "--json", str(js)]) == 0
    row = json.loads(js.read_text())
    want = [f.box for f in __import__("facespot").load()(upright)]
    assert (row["width"], row["height"]) == (512, 600) and len(row["faces"]) == len(want) == 1
    np.testing.assert_allclose(row["faces"][0]["box"], want[0], atol=2)
    out = tmp_path / "blurred.tiff"
    assert main(["blur", str(p), "--out", str(out)]) == 0
    blurred = read_image(out)[:, :, ::-1].astype(int)
    x1, y1, x2, y2 = (int(v) for v in want[0])
    face = (slice(y1 + 10, y2 - 10), slice(x1 + 10, x2 - 10))
    assert blurred.shape == upright.shape
    assert np.abs(blurred[face] - upright[face]).mean() > 8  # the face is hidden
    cv2.imwrite(str(tmp_path / "upright.png"), upright)
    assert main(["blur", str(tmp_path / "upright.png"), "--out", str(tmp_path / "upright_blurred.png")]) == 0
    same = cv2.imread(str(tmp_path / "upright_blurred.png")).astype(int)  # what blur does to the upright photo
    assert np.abs(blurred - same).mean() < 1  # the rest is the photo, upright, blurred the same way
