"""float16 packaged weights: half the bytes, float32 compute, outputs within rounding."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from facespot.cli import main as cli
from facespot.models import build
from facespot.models.io import HALF_MIN_SIZE, load_model, read_metadata, save_weights
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
    assert half.stat().st_size < 0.56 * full.stat().st_size and read_metadata(half)["weights_dtype"] == "float16"
    back = load_model(half)
    assert all(p.dtype == torch.float32 for p in back.parameters())
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        a, b = model(x), back(x)
    assert max(float((u - v).abs().max()) for u, v in zip(a, b)) < 0.05
    assert cli(["export", str(half), "--onnx", str(tmp_path / "m.onnx"), "--half"]) == 0
    assert (tmp_path / "m.onnx").stat().st_size < 0.6 * (tmp_path / "full.safetensors").stat().st_size


def test_half_files_keep_small_tensors_and_a_calibration_shift_exact(tmp_path):
    """Biases, BatchNorm statistics and score offsets stay float32 (as in the half ONNX file), so the
    logit shift a calibration adds to the face bias is stored exactly, not rounded to float16."""
    from safetensors import safe_open

    torch.manual_seed(0)
    model = build("spotnet_s").eval()
    model.shift_face_logit(0.123456789)
    path = save_weights(model, tmp_path / "half.safetensors", half=True)
    with safe_open(str(path), "pt") as f:
        dtypes = {k: (f.get_tensor(k).dtype, f.get_tensor(k).numel()) for k in f.keys()}
    floats = {k: v for k, v in dtypes.items() if v[0] in (torch.float16, torch.float32)}
    assert all((d == torch.float16) == (n >= HALF_MIN_SIZE) for d, n in floats.values())
    assert any(d == torch.float16 for d, _ in floats.values())
    back = load_model(path)
    assert torch.equal(back.head.cls.bias, model.head.cls.bias)
