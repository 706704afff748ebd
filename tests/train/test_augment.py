"""Augmentations move boxes and landmarks exactly with the pixels."""

import math

import numpy as np
import pytest

from facespot.data.augment import (
    DropSmall,
    HorizontalFlip,
    PhotometricDistort,
    RandomRotateScale,
    RandomSquareCrop,
    Resize,
    Sample,
    build_augment,
)
from facespot.errors import FacespotError


def _marked(h=100, w=200):
    """Image with a white 20x10 block at x 30..50, y 40..50 and its box/points."""
    img = np.zeros((h, w, 3), np.uint8)
    img[40:50, 30:50] = 255
    boxes = np.array([[30, 40, 50, 50]], np.float32)
    pts = np.array([[[32, 42], [48, 42], [np.nan, np.nan], [40, 48]]], np.float32)
    return Sample(img, boxes, pts, "m")


def _white_box(img):
    ys, xs = np.nonzero(img[..., 0] > 127)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def test_hflip_moves_pixels_boxes_and_swaps_eyes():
    s = HorizontalFlip(p=1.0)(_marked(), np.random.default_rng(0))
    assert s.boxes.tolist() == [[150, 40, 170, 50]]
    assert np.allclose(_white_box(s.image), s.boxes[0])
    # left eye (32) -> 168, right eye (48) -> 152, then swapped (Caltech 4-point pairs)
    assert s.points[0, 0].tolist() == [152, 42] and s.points[0, 1].tolist() == [168, 42]
    assert np.isnan(s.points[0, 2]).all()


def test_resize_scales_boxes_and_letterbox():
    s = Resize(size=(50, 400))(_marked(), np.random.default_rng(0))
    assert s.image.shape == (50, 400, 3)
    assert np.allclose(s.boxes, [[60, 20, 100, 25]])
    s = Resize(size=(100, 100), keep_ratio=True)(_marked(), np.random.default_rng(0))
    assert np.allclose(s.boxes, [[15, 20, 25, 25]])  # factor 0.5, padded below
    assert (s.image[60:] == 114).all()


def test_square_crop_keeps_faces_with_centre_inside():
    img = np.zeros((100, 200, 3), np.uint8)
    boxes = np.array([[10, 10, 30, 30], [150, 60, 190, 95]], np.float32)
    crop = RandomSquareCrop(scales=(0.5,))
    rng = np.random.default_rng(3)
    for _ in range(30):
        s = crop(Sample(img, boxes), rng)
        assert s.image.shape[:2] == (50, 50)
        assert len(s.boxes) >= 1  # a crop never loses every face
        assert (s.boxes >= 0).all() and (s.boxes <= 50).all()
        # every kept face has the size it had unless clipped
        w = s.boxes[:, 2] - s.boxes[:, 0]
        assert (w <= 40 + 1e-6).all()


def test_rotation_keeps_landmarks_exact_and_box_around_ellipse():
    img = np.zeros((200, 200, 3), np.uint8)
    boxes = np.array([[80, 60, 120, 140]], np.float32)  # 40 wide, 80 tall, centre (100,100)
    pts = np.array([[[90, 80], [110, 80]]], np.float32)
    t = RandomRotateScale(max_angle=90, scale=(1.0, 1.0))
    rng = np.random.default_rng(1)
    s = t(Sample(img, boxes, pts), rng)
    ang = np.random.default_rng(1)
    ang.random()
    deg = ang.uniform(-90, 90)
    th = math.radians(deg)
    # points: rotate about (100,100); OpenCV positive angle = counter-clockwise on screen
    dx, dy = -10, -20
    want = [100 + dx * math.cos(th) + dy * math.sin(th), 100 - dx * math.sin(th) + dy * math.cos(th)]
    assert np.allclose(s.points[0, 0], want, atol=1e-3)
    hw = math.hypot(20 * math.cos(th), 40 * math.sin(th))
    assert math.isclose(float(s.boxes[0, 2] - s.boxes[0, 0]), 2 * hw, rel_tol=1e-4)


def test_drop_small_and_photometric_keep_shapes():
    s = Sample(np.full((10, 10, 3), 100, np.uint8), np.array([[0, 0, 1, 5], [0, 0, 5, 5]], np.float32))
    assert DropSmall(2)(s, None).boxes.tolist() == [[0, 0, 5, 5]]
    p = PhotometricDistort(p=1.0)(s, np.random.default_rng(0))
    assert p.image.shape == s.image.shape and p.image.dtype == np.uint8 and (p.boxes == s.boxes).all()
    assert not (p.image == s.image).all()


def test_build_augment_from_config_and_errors():
    pipe = build_augment([{"square_crop": {"scales": [1.0]}}, "hflip", {"drop_small": {"min_size": 3}}], (64, 64))
    out = pipe(_marked(), np.random.default_rng(0))
    assert out.image.shape == (64, 64, 3)  # resize appended
    assert type(pipe.transforms[-1]).__name__ == "Resize"
    with pytest.raises(FacespotError, match="unknown augmentation 'blur'"):
        build_augment(["blur"], (64, 64), where="cfg.yaml: augment")
    with pytest.raises(FacespotError, match="unknown option 'prob'"):
        build_augment([{"hflip": {"prob": 0.5}}], (64, 64))


def test_same_seed_same_result():
    pipe = build_augment(None, (64, 64))
    a = pipe(_marked(), np.random.default_rng(7))
    b = pipe(_marked(), np.random.default_rng(7))
    assert (a.image == b.image).all() and np.array_equal(a.boxes, b.boxes)


def test_square_crop_zooms_out_onto_grey_and_keeps_faces_exact():
    s = _marked()
    crop = RandomSquareCrop(scales=(2.0,), fill=(7, 7, 7))
    for seed in range(5):
        out = crop(s, np.random.default_rng(seed))
        assert out.image.shape == (200, 200, 3)  # 2 x the short side (100)
        x1, y1, x2, y2 = out.boxes[0].astype(int)
        assert (out.image[y1:y2, x1:x2] == 255).all()  # the white block moved with its box
        assert (out.image == 7).any()  # the zoomed-out canvas shows the fill
        assert np.isfinite(out.points[0, [0, 1, 3]]).all() and np.isnan(out.points[0, 2]).all()
        assert np.allclose(out.points[0, 0] - out.boxes[0, :2], [2, 2])
