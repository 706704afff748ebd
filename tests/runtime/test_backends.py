"""ONNX Runtime and PyTorch give the same faces; NumPy pre/post-processing match torch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import facespot
from facespot import boxes as B
from facespot.models import build
from facespot.runtime.detector import Detector
from facespot.runtime.preprocess import normalize


def _image(h=120, w=160, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    img[30:80, 40:90] = (200, 160, 140)  # a flat skin-ish patch gives the random net something to respond to
    return img


def _assert_same_faces(a, b):
    assert len(a) == len(b) > 0
    np.testing.assert_allclose([f.box for f in a], [f.box for f in b], atol=1e-2)
    np.testing.assert_allclose([f.score for f in a], [f.score for f in b], atol=1e-4)
    if a[0].keypoints is not None:
        np.testing.assert_allclose(np.stack([f.keypoints for f in a]), np.stack([f.keypoints for f in b]), atol=1e-2)


@pytest.mark.parametrize("name", ["faceboxes", "blazeface_front"])
def test_torch_and_onnxruntime_agree(name):
    torch.manual_seed(1)
    torch.set_num_threads(1)
    model = build(name).eval()
    opts = dict(score_threshold=0.3, max_faces=40)
    t = Detector.from_model(model, "torch", threads=1, **opts)
    o = Detector.from_model(model, "onnxruntime", threads=1, **opts)
    img = _image()
    _assert_same_faces(t(img), o(img))
    # batch() equals one call per image, in both backends
    imgs = [img, _image(seed=3)]
    for det in (t, o):
        got = det.batch(imgs)
        for one, im in zip(got, imgs):
            _assert_same_faces(one, det(im))


def test_weights_file_backends_agree(tiny_weights):
    img = _image(200, 150)
    a = facespot.load(tiny_weights, backend="torch", threads=1, score_threshold=0.2)
    b = facespot.load(tiny_weights, backend="onnxruntime", threads=1, score_threshold=0.2)
    assert a.trained and b.trained and b.backend.threads == 1
    _assert_same_faces(a(img), b(img))


def test_bgr_default_rgb_flag_and_gray(tiny_weights):
    det = facespot.load(tiny_weights, backend="torch", score_threshold=0.2)
    rgb = _image()
    from_bgr = det(np.ascontiguousarray(rgb[:, :, ::-1]))
    from_rgb = det(rgb, rgb=True)
    _assert_same_faces(from_bgr, from_rgb)
    gray = rgb[:, :, 1]
    _assert_same_faces(det(gray), det(np.repeat(gray[:, :, None], 3, 2)))


def test_numpy_normalize_matches_model_preprocess():
    model = build("tinyfaces", backbone="resnet18")  # ImageNet mean/std: a non-trivial norm
    img = np.random.default_rng(0).integers(0, 255, (2, 24, 32, 3), dtype=np.uint8)
    ref = model.preprocess(torch.from_numpy(img)).numpy()
    n = model.input_norm
    np.testing.assert_allclose(normalize(list(img), n.mean, n.std, n.channel_order), ref, atol=1e-5)
    bgr_view = [im[:, :, ::-1][:, :, ::-1] for im in img]  # strided views are read without copies
    np.testing.assert_allclose(normalize(bgr_view, n.mean, n.std), ref, atol=1e-5)


def _reference_nms(boxes, scores, t, max_out=None):
    """The textbook greedy loop, written for clarity: the fast ``boxes.nms`` must agree."""
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order and (max_out is None or len(keep) < max_out):
        i = order.pop(0)
        keep.append(i)
        order = [j for j in order if B.iou(boxes[i : i + 1], boxes[j : j + 1], pixel_inclusive=False)[0, 0] <= t]
    return np.asarray(keep, np.int64)


def _reference_blending(boxes, scores, t, points, max_out=None):
    order = list(np.argsort(-scores, kind="stable"))
    out_b, out_s, out_p = [], [], []
    while order and (max_out is None or len(out_b) < max_out):
        i = order[0]
        ov = B.iou(boxes[i : i + 1], boxes[order], pixel_inclusive=False)[0]
        members = [j for j, o in zip(order, ov) if o > t]
        w = scores[members][:, None]
        out_b.append((boxes[members] * w).sum(0) / w.sum())
        out_p.append((points[members] * w[:, :, None]).sum(0) / w.sum())
        out_s.append(scores[i])
        order = [j for j, o in zip(order, ov) if o <= t]
    return np.stack(out_b), np.asarray(out_s), np.stack(out_p)


@pytest.mark.parametrize("n", [1, 60, 700])
def test_fast_nms_equals_reference(n):
    rng = np.random.default_rng(n)
    xy = rng.uniform(0, 300, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (n, 2))], 1).astype(np.float32)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    for t in (0.3, 0.5):
        np.testing.assert_array_equal(B.nms(boxes, scores, t), _reference_nms(boxes, scores, t))
        np.testing.assert_array_equal(B.nms(boxes, scores, t, max_out=5), _reference_nms(boxes, scores, t, 5))


def test_fast_blending_nms_equals_reference():
    rng = np.random.default_rng(7)
    n = 300
    xy = rng.uniform(0, 1, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.02, 0.2, (n, 2))], 1).astype(np.float32)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    points = rng.uniform(0, 1, (n, 6, 2)).astype(np.float32)
    for max_out in (None, 7):
        got = B.blending_nms(boxes, scores, 0.3, points=points, max_out=max_out)
        ref = _reference_blending(boxes, scores, 0.3, points, max_out)
        for a, b in zip(got, ref):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    empty = B.blending_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.3)
    assert empty[0].shape == (0, 4) and empty[1].shape == (0,)
    degenerate = np.array([[5, 5, 5, 5], [0, 0, 10, 10]], np.float32)  # a zero-area box must not hang
    got = B.blending_nms(degenerate, np.array([0.9, 0.8], np.float32), 0.3)
    assert got[0].shape == (2, 4)
