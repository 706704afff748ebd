"""Grid detectors: the MobileNetV2 grid model and the YOLOv1-loss model -- cells, anchor
counts against forward, head layout, grid decoding, options and ONNX parity."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from facespot import anchors as A
from facespot.errors import FacespotError
from facespot.models import available, build, decode_outputs
from facespot.runtime.onnx_export import export_onnx


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


# ---------------------------------------------------------------- cells


def test_grid_cells_hand_computed():
    c = A.grid_cells(2, 3, 2)
    assert c.shape == (2 * 3 * 2, 4)
    np.testing.assert_allclose(c[0], [1 / 6, 1 / 4, 1 / 3, 1 / 2], rtol=1e-6)
    np.testing.assert_array_equal(c[0], c[1])  # the B predictors of one cell share it
    np.testing.assert_allclose(c[2], [3 / 6, 1 / 4, 1 / 3, 1 / 2], rtol=1e-6)  # next column
    np.testing.assert_allclose(c[6], [1 / 6, 3 / 4, 1 / 3, 1 / 2], rtol=1e-6)  # next row
    with pytest.raises(ValueError):
        A.grid_cells(0, 3)


def test_stride_cells_keep_pixel_size_on_odd_inputs():
    # 70x64 input, stride 32: ceil -> 3 x 2 cells of 32 px; the last row reaches past the edge
    c = A.stride_grid_cells(70, 64, 32, 1)
    assert c.shape == (6, 4)
    np.testing.assert_allclose(c[5], [48 / 64, 80 / 70, 32 / 64, 32 / 70], rtol=1e-6)
    # divisible inputs tile the image exactly, like grid_cells
    np.testing.assert_allclose(A.stride_grid_cells(64, 96, 32, 2), A.grid_cells(2, 3, 2), rtol=1e-6)


# ---------------------------------------------------------------- models: shapes


CASES = [
    ("grid_mobilenetv2", {}),
    ("grid_mobilenetv2", {"grid_size": 14, "upsample": True}),
    ("grid_mobilenetv2", {"grid_size": 28, "upsample": True, "alpha": 0.35}),
    ("grid_mobilenetv2", {"grid_size": 14}),
    ("grid_mobilenetv2", {"reach": 0.5}),
    ("yolo", {"input_size": 128, "grid_size": 2}),
    ("yolo", {"backbone": "pool_resnet", "input_size": 128, "grid_size": 2, "boxes_per_cell": 3}),
    ("yolo", {"backbone": "mobilenet_v3", "input_size": 128, "grid_size": 4}),
    ("yolo", {"backbone": "mobilenet_v3_small", "input_size": 128, "grid_size": 16}),
]


@pytest.mark.parametrize("name, opts", CASES)
def test_anchor_count_matches_forward(name, opts):
    torch.manual_seed(0)
    m = build(name, **opts).eval()
    stride = m.config["input_size"] // m.config["grid_size"]
    b = m.config.get("boxes_per_cell", 1)
    for h, w in [(64, 64), (67, 45), (96, 130)]:
        with torch.no_grad():
            deltas, logits = m(torch.randn(1, 3, h, w))
        expected = math.ceil(h / stride) * math.ceil(w / stride) * b
        assert deltas.shape == (1, expected, 4) and logits.shape == (1, expected), (h, w)
        assert m.anchors(h, w).shape == (expected, 4)


def test_configured_size_gives_s_by_s_by_b():
    with torch.device("meta"):
        yolo = build("yolo")  # YOLOv1's 7x7 grid, B = 2 at 448x448
        grid = build("grid_mobilenetv2")  # 7x7 at 224x224
    assert len(yolo.anchors(448, 448)) == 7 * 7 * 2
    assert len(grid.anchors(224, 224)) == 49
    assert len(grid.anchors(448, 448)) == 14 * 14  # grid grows with the input at fixed stride
    assert yolo.train_input_size == (448, 448) and grid.train_input_size == (224, 224)
    assert yolo.suppression == grid.suppression == "hard"
    assert "7x7 grid x 2 boxes" in yolo.describe_anchors() and "stride 64" in yolo.describe_anchors()
    assert "7x7 grid" in grid.describe_anchors() and "stride 32" in grid.describe_anchors()
    assert {"yolo", "grid_mobilenetv2", "tinyfaces"} <= set(available())


def test_pool_resnet_reaches_stride_64_without_extra_convs():
    with torch.device("meta"):
        plain = build("yolo", backbone="resnet18")
        pooled = build("yolo", backbone="pool_resnet")
    assert plain.stride == pooled.stride == 64
    assert len(plain.neck) == 2 and len(pooled.neck) == 1  # resnet18 needs one stride-2 conv


# ---------------------------------------------------------------- head layout and decoding


@pytest.mark.parametrize("name, opts", [CASES[0], CASES[5]])
def test_head_channels_line_up_with_cells(name, opts):
    m = build(name, **opts).eval()
    b = m.config.get("boxes_per_cell", 1)
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.copy_(torch.arange(5 * b, dtype=torch.float32))
        deltas, logits = m(torch.randn(1, 3, 64, 96))
    j = np.arange(logits.shape[1]) % b  # predictor index within its cell
    np.testing.assert_array_equal(logits[0].numpy(), 5 * j + 4)
    for k in range(4):
        np.testing.assert_array_equal(deltas[0, :, k].numpy(), 5 * j + k)


def test_zero_deltas_decode_to_cell_centres():
    m = build("yolo", input_size=128, grid_size=2).eval()
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.zero_()
        out = m(torch.randn(1, 3, 128, 128))
    boxes, scores, _ = decode_outputs(out, torch.from_numpy(m.anchors(128, 128)), m.coding)
    # cell (row 1, col 0), predictor 1 -> index (1*2 + 0)*2 + 1; centre (0.25, 0.75), size 0.5
    np.testing.assert_allclose(boxes[0, 5].numpy(), [0.0, 0.5, 0.5, 1.0], atol=1e-6)
    assert torch.allclose(scores, torch.full_like(scores, 0.5))


def test_grid_decoding_hand_computed():
    m = build("yolo", input_size=128, grid_size=2, boxes_per_cell=1)
    cells = m.anchors(128, 128)  # 2x2 cells of 0.5
    deltas = np.zeros((4, 4), np.float32)
    deltas[2] = [_logit(0.25), _logit(0.75), _logit(0.2), _logit(0.4)]  # cell (row 1, col 0)
    boxes, _, _ = decode_outputs((deltas, np.zeros(4, np.float32)), cells, m.coding)
    # centre x = 0 + 0.25 * 0.5, y = 0.5 + 0.75 * 0.5; size 0.2 x 0.4 of the image
    np.testing.assert_allclose(boxes[2], [0.025, 0.675, 0.225, 1.075], atol=1e-6)


# ---------------------------------------------------------------- options, training step


@pytest.mark.parametrize(
    "name, opts",
    [
        ("grid_mobilenetv2", {"grid_size": 5}),  # 224 / 5 is not whole
        ("grid_mobilenetv2", {"grid_size": 4}),  # stride 56
        ("grid_mobilenetv2", {"upsample": True}),  # nothing to upsample at stride 32
        ("grid_mobilenetv2", {"alpha": 0}),
        ("grid_mobilenetv2", {"reach": 1.5}),
        ("yolo", {"backbone": "vgg16"}),
        ("yolo", {"grid_size": 6}),  # 448 / 6
        ("yolo", {"boxes_per_cell": 0}),
    ],
)
def test_bad_options(name, opts):
    with pytest.raises(FacespotError):
        build(name, **opts)


@pytest.mark.parametrize("name, opts", CASES)
def test_train_step_is_quick(name, opts):
    torch.manual_seed(0)
    m = build(name, **opts).train()
    opt = torch.optim.SGD(m.parameters(), lr=1e-3)
    start = time.perf_counter()
    deltas, logits = m(torch.randn(2, 3, 96, 96))
    loss = deltas.sigmoid().pow(2).mean() + torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.zeros_like(logits)
    )
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    assert time.perf_counter() - start < 10.0


# ---------------------------------------------------------------- ONNX


@pytest.mark.parametrize(
    "name, opts",
    [("grid_mobilenetv2", {"grid_size": 14, "upsample": True}), ("yolo", {"backbone": "mobilenet_v3_small", "input_size": 128, "grid_size": 4})],
)
def test_onnx_parity_dynamic_size(name, opts, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    m = build(name, **opts).eval()
    path = export_onnx(m, tmp_path / "m.onnx", 64, 64)  # the exporter users get
    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((2, 3, 80, 112)).astype(np.float32)
    got = sess.run(None, {sess.get_inputs()[0].name: x})
    with torch.no_grad():
        ref = m(torch.from_numpy(x))
    assert got[1].shape == (2, len(m.anchors(80, 112)))
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r.numpy(), atol=1e-4, rtol=0)


def test_reach_survives_weights_and_onnx_and_both_backends_decode_with_it(tmp_path):
    """A reach-0.5 grid model saved, exported (``facespot export``) and loaded again: torch and
    ONNX Runtime report the same faces, decoded with the reach. The head is set by hand (zero
    weights, so every cell outputs its bias): offsets sigmoid(2.0) = 0.881 put each centre
    (2 * 0.881 - 0.5) * 32 = 40.4 px past its cell's origin -- beyond the 32-px cell, which
    reach 0 cannot do (it would give 0.881 * 32 = 28.2)."""
    pytest.importorskip("onnxruntime")
    import facespot
    from facespot.cli import main
    from facespot.models.io import load_model, save_weights

    m = build("grid_mobilenetv2", reach=0.5).eval()
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.copy_(torch.tensor([2.0, 2.0, -3.0, -3.0, 3.0]))
    w = save_weights(m, tmp_path / "g.safetensors")
    assert load_model(w).coding.reach == 0.5
    assert main(["export", str(w), "--onnx", str(tmp_path / "g.onnx")]) == 0
    img = np.full((224, 224, 3), 90, np.uint8)
    found = {b: facespot.load(str(p), backend=b, score_threshold=0.5, max_faces=1000, nms_iou=1.0)(img)
             for b, p in (("torch", w), ("onnxruntime", tmp_path / "g.onnx"))}  # fmt: skip
    boxes = {b: np.array(sorted(f.box for f in faces)) for b, faces in found.items()}
    assert len(boxes["torch"]) >= 36  # the 6 x 6 cells whose centres stay inside the image, at least
    np.testing.assert_allclose(boxes["torch"], boxes["onnxruntime"], atol=0.05)
    centres = (boxes["torch"][:, :2] + boxes["torch"][:, 2:]) / 2
    expected = (2 / (1 + math.exp(-2.0)) - 0.5) * 32
    assert centres.min(axis=0) == pytest.approx([expected, expected], abs=0.05)
