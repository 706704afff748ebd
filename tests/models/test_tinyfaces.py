"""Tiny Faces: template anchors, k-means templates, the head layout against the anchors,
box coding, the image-pyramid helper and ONNX parity."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch

from facespot import anchors as A
from facespot.errors import FacespotError
from facespot.models import build, decode_outputs
from facespot.runtime.onnx_export import export_onnx
from facespot.models.tinyfaces import (
    DEFAULT_TEMPLATE_SCALES,
    DEFAULT_TEMPLATES,
    auto_scales,
    detect_pyramid,
    templates_for_scale,
)


def _small(templates=((16.0, 16.0), (32.0, 32.0)), **kw):
    torch.manual_seed(0)
    return build("tinyfaces", backbone="resnet18", templates=[list(t) for t in templates], **kw)


# ---------------------------------------------------------------- anchors


def test_template_anchors_hand_computed():
    a = A.template_anchors(16, 24, 8, [[10, 12], [20, 30]])
    assert a.shape == (2 * 3 * 2, 4)  # 2x3 cells x 2 templates
    # cell (row 0, col 0), template 0: centre (4, 4) px of a 24x16 input
    np.testing.assert_allclose(a[0], [4 / 24, 4 / 16, 10 / 24, 12 / 16], rtol=1e-6)
    np.testing.assert_allclose(a[1], [4 / 24, 4 / 16, 20 / 24, 30 / 16], rtol=1e-6)
    # cell (row 0, col 1) comes next (row-major), then row 1 starts at index 6
    np.testing.assert_allclose(a[2], [12 / 24, 4 / 16, 10 / 24, 12 / 16], rtol=1e-6)
    np.testing.assert_allclose(a[6], [4 / 24, 12 / 16, 10 / 24, 12 / 16], rtol=1e-6)
    # odd sizes: ceil(17/8) x ceil(25/8) = 3 x 4 cells
    assert len(A.template_anchors(17, 25, 8, [[10, 12]])) == 12
    with pytest.raises(ValueError):
        A.template_anchors(16, 16, 8, [])


@pytest.mark.parametrize("size", [(64, 64), (67, 45), (40, 96)])
def test_anchor_count_matches_forward(size):
    m = _small().eval()
    h, w = size
    with torch.no_grad():
        deltas, logits = m(torch.randn(1, 3, h, w))
    expected = math.ceil(h / 8) * math.ceil(w / 8) * 2
    assert deltas.shape == (1, expected, 4) and logits.shape == (1, expected)
    assert m.anchors(h, w).shape == (expected, 4)


def test_head_channels_line_up_with_anchor_order():
    """A constant head output per channel lands on the anchor the anchors() order says."""
    m = _small().eval()
    t = len(m.templates)
    with torch.no_grad():
        for conv in m.score:
            conv.weight.zero_()
            conv.bias.zero_()
        m.score[0].bias.copy_(torch.arange(5 * t, dtype=torch.float32))
        deltas, logits = m(torch.randn(1, 3, 40, 48))
    a = np.arange(logits.shape[1])
    np.testing.assert_array_equal(logits[0].numpy(), a % t)  # score channel = template id
    for k in range(4):  # offsets of template j sit in channels t + 4j + k
        np.testing.assert_array_equal(deltas[0, :, k].numpy(), t + 4 * (a % t) + k)


def test_zero_deltas_decode_to_template_boxes():
    m = _small().eval()
    with torch.no_grad():
        for conv in m.score:
            conv.weight.zero_()
            conv.bias.zero_()
        out = m(torch.randn(1, 3, 40, 48))
    boxes, scores, _ = decode_outputs(out, torch.from_numpy(m.anchors(40, 48)), m.coding)
    # cell (row 2, col 3) -> centre (28, 20) px; template 1 is 32x32 px
    idx = (2 * 6 + 3) * 2 + 1
    np.testing.assert_allclose(boxes[0, idx].numpy(), [12 / 48, 4 / 40, 44 / 48, 36 / 40], atol=1e-6)
    assert torch.allclose(scores, torch.full_like(scores, 0.5))


def test_offsets_use_unit_variances():
    m = _small()
    assert m.coding.kind == "ssd" and tuple(m.coding.variances) == (1.0, 1.0)
    anchor = np.array([[0.5, 0.5, 0.2, 0.4]], np.float32)  # template box
    deltas = np.array([[0.5, -0.25, math.log(2.0), 0.0]], np.float32)
    boxes, _, _ = decode_outputs((deltas, np.zeros(1, np.float32)), anchor, m.coding)
    # centre moves by 0.5 * w and -0.25 * h, width doubles: (0.6, 0.4), 0.4 x 0.4
    np.testing.assert_allclose(boxes[0], [0.4, 0.2, 0.8, 0.6], atol=1e-6)


# ---------------------------------------------------------------- k-means templates


def _clusters(seed=0):
    rng = np.random.default_rng(seed)
    truth = np.array([[120.0, 150.0], [40.0, 50.0], [12.0, 15.0]])  # largest first
    wh = np.concatenate([c * np.exp(rng.normal(0, 0.05, (300, 2))) for c in truth])
    return truth, wh[rng.permutation(len(wh))]


def test_fit_templates_recovers_clusters():
    truth, wh = _clusters()
    got = A.fit_templates(wh, 3, seed=0)
    assert got.shape == (3, 2) and got.dtype == np.float32
    np.testing.assert_allclose(got, truth, rtol=0.03)  # sorted by area, largest first


def test_fit_templates_is_deterministic_and_uses_iou():
    _, wh = _clusters(1)
    a = A.fit_templates(wh, 5, seed=3)
    b = A.fit_templates(wh.copy(), 5, seed=3)
    np.testing.assert_array_equal(a, b)
    areas = a[:, 0] * a[:, 1]
    assert np.all(np.diff(areas) <= 0)
    # one template per exact size recovers the sizes exactly
    exact = A.fit_templates(np.array([[10.0, 10.0], [10.0, 10.0], [50.0, 60.0]]), 2)
    np.testing.assert_allclose(exact, [[50.0, 60.0], [10.0, 10.0]])


@pytest.mark.parametrize("bad, k", [(np.ones((4, 3)), 2), (np.array([[1.0, -2.0]]), 1), (np.ones((2, 2)), 3)])
def test_fit_templates_rejects_bad_input(bad, k):
    with pytest.raises(ValueError):
        A.fit_templates(bad, k)


# ---------------------------------------------------------------- model options


def test_defaults_and_config_round_trip():
    assert len(DEFAULT_TEMPLATES) == len(DEFAULT_TEMPLATE_SCALES) == 25
    # official row 1 of hr_res101's clusters: (-86.338, -113.444, 86.338, 113.444) -> w = x2 - x1 + 1
    assert DEFAULT_TEMPLATES[0] == pytest.approx((2 * 86.3382352941177 + 1, 2 * 113.444117647059 + 1), abs=1e-3)
    with torch.device("meta"):
        m = build("tinyfaces")
    assert m.config["backbone"] == "resnet101" and len(m.config["templates"]) == 25
    assert m.suppression == "hard" and m.num_keypoints == 0
    cfg = json.loads(json.dumps(m.config))  # what a weights file stores
    cfg.pop("name")
    with torch.device("meta"):
        again = build("tinyfaces", **cfg)
    np.testing.assert_array_equal(again.templates, m.templates)
    np.testing.assert_array_equal(again.template_scales, m.template_scales)
    assert "25 templates" in m.describe_anchors() and "stride-8" in m.describe_anchors()


@pytest.mark.parametrize(
    "opts",
    [
        {"backbone": "vgg16"},
        {"templates": [[10, -1]]},
        {"templates": [[10, 10, 3]]},
        {"templates": [[10, 10]], "template_scales": [1, 2]},
    ],
)
def test_bad_options(opts):
    with pytest.raises(FacespotError):
        build("tinyfaces", **opts)


@pytest.mark.parametrize("backbone, size", [("resnet18", 64), ("resnet50", 64), ("resnet101", 64)])
def test_train_step_is_quick(backbone, size):
    torch.manual_seed(0)
    m = build("tinyfaces", backbone=backbone, use_res5=backbone == "resnet50").train()
    opt = torch.optim.SGD(m.parameters(), lr=1e-3)
    start = time.perf_counter()
    deltas, logits = m(torch.randn(2, 3, size, size))
    loss = deltas.pow(2).mean() + torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
    loss.backward()
    opt.step()
    elapsed = time.perf_counter() - start
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in m.parameters())
    assert elapsed < 15.0, f"{backbone}: one step took {elapsed:.1f}s"


# ---------------------------------------------------------------- image pyramid


def test_templates_for_scale_rule():
    labels = [0.5, 1.0, 2.0]
    assert templates_for_scale(labels, 0.5).tolist() == [True, True, False]
    assert templates_for_scale(labels, 1.0).tolist() == [False, True, False]
    assert templates_for_scale(labels, 2.0).tolist() == [False, True, True]


def test_auto_scales_hand_computed():
    t = np.array([[110.0, 110.0], [40.0, 40.0]])
    # 400x300: log2(110/300) = -1.45, log2(110/400) = -1.86 -> floor -> min(-2, -2) = -2;
    # upsampling up to 2x while the long side stays <= 3000
    assert auto_scales(300, 400, t) == [0.25, 0.5, 1.0, 2**0.5, 2.0]
    # 2000 px long side: -log2(2000/3000) = 0.585 caps at one half-octave
    assert auto_scales(2000, 1000, t) == [2.0**-5, 2.0**-4, 2.0**-3, 2.0**-2, 2.0**-1, 1.0, 2**0.5]


def _fake_forward(fires):
    """ONNX-like forward: logits -10 except the anchors in ``fires[(h, w)] = {index: prob}``."""

    def forward(x):
        h, w = x.shape[2:]
        n = math.ceil(h / 8) * math.ceil(w / 8) * 2
        logits = np.full((1, n), -10.0, np.float32)
        for idx, p in fires.get((h, w), {}).items():
            logits[0, idx] = math.log(p / (1 - p))
        return np.zeros((1, n, 4), np.float32), logits

    return forward


def test_detect_pyramid_merges_scales_in_original_frame():
    m = _small()  # templates 16 and 32 px, both used at every scale
    image = np.zeros((40, 48, 3), np.uint8)
    fires = {
        # scale 1 (40x48 -> 5x6 cells): cell (1, 2), 32-px template -> centre (20, 12) px
        (40, 48): {(1 * 6 + 2) * 2 + 1: 0.9, 0: 0.3},  # the 0.3 one is below threshold
        # scale 2 (80x96 -> 10x12 cells): cell (2, 4), 32 px -> centre (36, 20) px of the 2x image;
        # its neighbour cell (2, 5) overlaps it by IoU 0.6 and is suppressed
        (80, 96): {(2 * 12 + 4) * 2 + 1: 0.8, (2 * 12 + 5) * 2 + 1: 0.7},
    }
    res = detect_pyramid(m, image, scales=(1.0, 2.0), score_threshold=0.5, forward=_fake_forward(fires))
    assert res.boxes.shape == (2, 4)
    np.testing.assert_allclose(res.scores, [0.9, 0.8], rtol=1e-5)
    np.testing.assert_array_equal(res.scales, [1.0, 2.0])
    # scale 1: (20,12) +- 16 px in 48x40 -> y1 clipped at 0
    np.testing.assert_allclose(res.boxes[0], [4 / 48, 0.0, 36 / 48, 28 / 40], atol=1e-6)
    # scale 2: (36,20) +- 16 px in 96x80 == (18,10) +- 8 px in the original
    np.testing.assert_allclose(res.boxes[1], [20 / 96, 4 / 80, 52 / 96, 36 / 80], atol=1e-6)


def test_detect_pyramid_respects_template_scales_and_max_side():
    m = _small(template_scales=[1.0, 2.0])  # the 32-px template only on upsampled images
    image = np.zeros((40, 48, 3), np.uint8)
    fires = {(40, 48): {(1 * 6 + 2) * 2 + 1: 0.9}, (80, 96): {(2 * 12 + 4) * 2 + 1: 0.8}}
    res = detect_pyramid(m, image, scales=(1.0, 2.0), forward=_fake_forward(fires))
    np.testing.assert_array_equal(res.scales, [2.0])  # the scale-1 hit used a 2X template
    res = detect_pyramid(m, image, scales=(1.0, 2.0), max_side=60, forward=_fake_forward(fires))
    assert len(res.boxes) == 0  # 2x (96 px) skipped; nothing allowed at 1x


def test_detect_pyramid_runs_the_torch_model():
    m = _small()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (30, 41, 3), dtype=np.uint8)
    res = detect_pyramid(m, image, scales=(0.5, 1.0, 2.0), score_threshold=0.0, max_detections=50)
    assert 0 < len(res.boxes) <= 50
    assert np.all((res.boxes >= 0) & (res.boxes <= 1))
    assert np.all(np.diff(res.scores) <= 0)
    assert set(np.unique(res.scales)) <= {0.5, 1.0, 2.0}
    with pytest.raises(FacespotError):
        detect_pyramid(m, image.astype(np.float32))


# ---------------------------------------------------------------- ONNX


def test_onnx_parity_dynamic_size(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    m = _small(use_res5=True).eval()
    path = export_onnx(m, tmp_path / "tiny.onnx", 64, 64)  # the exporter users get
    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 3, 56, 88)).astype(np.float32)  # not the export size
    got = sess.run(None, {sess.get_inputs()[0].name: x})
    with torch.no_grad():
        ref = m(torch.from_numpy(x))
    assert got[0].shape == (2, 7 * 11 * 2, 4)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r.numpy(), atol=1e-4, rtol=0)

