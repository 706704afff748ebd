"""float16 packaged weights: half the bytes, float32 compute, outputs within rounding."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from facespot.cli import main as cli
from facespot.models import build
from facespot.models.io import load_model, read_metadata, save_weights
from facespot.runtime.onnx_export import export_onnx, halve_weights


def test_half_onnx_is_half_the_size_and_computes_in_float32(tmp_path):
    torch.manual_seed(0)
    model = build("faceboxes").eval()
    full = export_onnx(model, tmp_path / "full.onnx")
    half = export_onnx(model, tmp_path / "half.onnx")
    halve_weights(half)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 128)).astype(np.float32)
    out_full = ort.InferenceSession(str(full), providers=["CPUExecutionProvider"]).run(None, {"images": x})
    sess = ort.InferenceSession(str(half), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].type == "tensor(float)" and all(o.type == "tensor(float)" for o in sess.get_outputs())
    out_half = sess.run(None, {sess.get_inputs()[0].name: x})
    for a, b in zip(out_full, out_half):
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
        assert np.abs(a - b).max() < 0.05 and np.abs(a - b).max() > 0  # rounded, not identical


def test_half_safetensors_load_as_float32_and_export_checks_them(tmp_path):
    torch.manual_seed(0)
    model = build("spotnet_n").eval()
    full = save_weights(model, tmp_path / "full.safetensors")
    half = save_weights(model, tmp_path / "half.safetensors", half=True)
    assert half.stat().st_size < 0.55 * full.stat().st_size and read_metadata(half)["weights_dtype"] == "float16"
    back = load_model(half)
    assert all(p.dtype == torch.float32 for p in back.parameters())
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        a, b = model(x), back(x)
    assert max(float((u - v).abs().max()) for u, v in zip(a, b)) < 0.05
    assert cli(["export", str(half), "--onnx", str(tmp_path / "m.onnx"), "--half"]) == 0
    assert (tmp_path / "m.onnx").stat().st_size < 0.6 * (tmp_path / "full.safetensors").stat().st_size
