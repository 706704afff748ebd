"""Checks every registered model must pass (parametrised over ``models.available()``),
plus the MAC counter and the ``facespot models`` command."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from facespot import models
from facespot.cli import main as cli_main
from facespot.models import card
from facespot.runtime.onnx_export import check_onnx, export_onnx, output_names

NAMES = models.available()
SMALL = (128, 128)  # small square input for models that accept any size


def _build(name: str):
    torch.manual_seed(0)
    return models.build(name)


def _small_size(m) -> tuple[int, int]:
    return tuple(m.fixed_input_size or SMALL)


@pytest.mark.parametrize("name", NAMES)
def test_contract(name):
    m = _build(name)
    assert isinstance(m, models.FaceModel)
    assert m.config.get("name") == name
    assert m.name == name
    assert m.paper
    assert m.coding.kind in ("ssd", "grid")
    assert getattr(m, "suppression", None) in ("hard", "blend")
    h, w = _small_size(m)
    m.eval()
    with torch.no_grad():
        out = m(torch.zeros(1, 3, h, w))
    a = m.anchors(h, w)
    assert isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[1] == 4
    assert out[0].shape == (1, len(a), 4)
    assert out[1].shape == (1, len(a))
    if m.num_keypoints:
        assert out[2].shape == (1, len(a), m.num_keypoints, 2)
    else:
        assert len(out) == 2 or out[2] is None


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_finite(name):
    m = _build(name).train()
    h, w = _small_size(m)
    out = m(torch.randn(2, 3, h, w))
    loss = out[0].pow(2).mean() + nn.functional.softplus(out[1]).mean()
    if m.num_keypoints:
        loss = loss + out[2].pow(2).mean()
    loss.backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads), "some parameters got no gradient"
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize("name", NAMES)
def test_decode_outputs_in_unit_square(name):
    # Train mode: batch statistics keep an untrained deep net's activations in range
    # (fresh running stats in eval mode do not normalise anything).
    m = _build(name).train()
    h, w = _small_size(m)
    with torch.no_grad():
        out = m(torch.rand(2, 3, h, w) * 2 - 1)
    a = m.anchors(h, w)
    boxes, scores, points = models.decode_outputs(out, torch.from_numpy(a), m.coding)
    assert boxes.shape == (2, len(a), 4)
    assert torch.isfinite(boxes).all()
    assert ((scores >= 0) & (scores <= 1)).all()
    centres = (boxes[..., :2] + boxes[..., 2:]) / 2
    # an untrained model predicts near its anchors, whose centres lie in the input
    assert centres.min() > -0.25 and centres.max() < 1.25
    assert (boxes[..., 2:] > boxes[..., :2]).all()
    if m.num_keypoints:
        assert points.shape == (2, len(a), m.num_keypoints, 2)
        assert torch.isfinite(points).all()


@pytest.mark.parametrize("name", NAMES)
def test_onnx_parity(name, tmp_path):
    import onnx

    m = _build(name)
    h, w = _small_size(m)
    path = export_onnx(m, tmp_path / f"{name}.onnx", h, w)
    g = onnx.load(str(path)).graph
    assert [o.name for o in g.output] == output_names(m)
    res = check_onnx(m, path, h, w, batch=2)
    assert res.worst < 1e-4, res.max_abs_diff
    if m.fixed_input_size is None:  # dynamic H/W: run at another size than exported
        res2 = check_onnx(m, path, h + 32, w - 32)
        assert res2.worst < 1e-4, res2.max_abs_diff
        dims = g.input[0].type.tensor_type.shape.dim
        assert dims[2].dim_param and dims[3].dim_param


@pytest.mark.parametrize("name", NAMES)
def test_card(name):
    m = _build(name)
    c = card.model_card(m)
    assert c.name == name and c.params == sum(p.numel() for p in m.parameters())
    text = card.render_card(c, m)
    assert name in text and m.paper in text
    meas = card.measure(m)
    assert meas.macs > 0 and meas.anchors == len(m.anchors(meas.height, meas.width))
    if m.fixed_input_size is None:
        assert (meas.height, meas.width) == (480, 640) and c.macs_640x480 == meas.macs
    else:
        assert c.macs_640x480 is None and meas.size_text in c.notes


# ---------------------------------------------------------------- MAC counter


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)  # 8x8 -> 4x4
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)  # depthwise
        self.g = nn.Conv2d(8, 4, 1, groups=2)  # grouped 1x1
        self.up = nn.ConvTranspose2d(4, 2, 2, stride=2)  # 4x4 -> 8x8
        self.fc = nn.Linear(2 * 8 * 8, 10)

    def forward(self, x):
        x = self.up(self.g(self.dw(torch.relu(self.c1(x)))))
        return self.fc(x.flatten(1))


def test_macs_hand_computed():
    expect = (
        (8 * 4 * 4) * 3 * 3 * 3  # c1: 128 outputs x 27
        + (8 * 4 * 4) * 1 * 3 * 3  # depthwise: 128 outputs x 9
        + (4 * 4 * 4) * (8 // 2)  # grouped: 64 outputs x 4 inputs
        + (4 * 4 * 4) * 2 * 2 * 2  # transposed: 64 inputs x 2 outputs x 2x2
        + 10 * 128  # linear
    )
    assert expect == 6656
    assert card.count_macs(_Tiny(), 8, 8) == expect
    assert card.count_macs(_Tiny(), 8, 8, use_meta=False) == expect


def test_faceboxes_macs_match_formula():
    """First FaceBoxes conv at 640x480: 7x7x3 x 24 channels on a 160x120 map."""
    m = models.build("faceboxes")
    full = card.count_macs(m, 480, 640)
    assert full > 160 * 120 * 24 * 7 * 7 * 3
    conv1_only = card.count_macs(m.conv1, 480, 640)
    assert conv1_only == 160 * 120 * 24 * 7 * 7 * 3


def test_format_count():
    assert card.format_count(None) == "-"
    assert card.format_count(999) == "999"
    assert card.format_count(1_234_567) == "1.23M"
    assert card.format_count(2_500_000_000) == "2.50G"


# ---------------------------------------------------------------- CLI


def test_cli_lists_every_model(capsys):
    assert cli_main(["models"]) == 0
    out = capsys.readouterr().out
    for name in NAMES:
        assert name in out
    assert "640x480" in out


def test_cli_card_and_unknown(capsys):
    assert cli_main(["models", "faceboxes"]) == 0
    out = capsys.readouterr().out
    assert "21 per cell" in out and "6400 at 640x480" in out
    assert cli_main(["models", "no_such_model"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_cli_weights_card(tmp_path, capsys):
    from facespot.models.io import save_weights

    p = save_weights(models.build("blazeface_front"), tmp_path / "bf.safetensors")
    assert cli_main(["models", "--weights", str(p)]) == 0
    assert "blazeface_front" in capsys.readouterr().out
    assert cli_main(["models", "--weights", str(tmp_path / "none.safetensors")]) == 2
