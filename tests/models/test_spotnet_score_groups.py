"""SpotNet's per-group score offsets: which anchors a group holds, that an offset moves
exactly those logits (in PyTorch and in the exported ONNX), and older weights files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from facespot import FacespotError, models
from facespot.models import io


def _model():
    torch.manual_seed(0)
    return models.build("spotnet_n").eval()


def test_groups_are_level_and_anchor_size_smallest_first():
    m = _model()
    groups, anchors = m.score_groups(64, 96), m.anchors(64, 96)
    assert groups.shape == (len(anchors),)
    sides = np.rint(anchors[:, 2] * 96).astype(int)  # (cx, cy, w, h) relative to the input
    for g, side in enumerate([16, 32, 64, 128, 256, 512]):
        assert set(sides[groups == g]) == {side}
    from facespot.spec import model_spec

    # the torch-free description that ONNX files load with says the same
    np.testing.assert_array_equal(model_spec("spotnet_n").score_groups(64, 96), groups)


def test_an_offset_moves_only_its_groups_logits_in_torch_and_onnx():
    from facespot.runtime.detector import Detector

    m = _model()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        before = m(x)[1][0].numpy()
    offsets = np.array([-1.0, 0.0, 0.5, 0.0, 0.0, 2.0], np.float32)
    m.add_score_offsets(offsets)
    with torch.no_grad():
        after = m(x)[1][0].numpy()
    np.testing.assert_allclose(after - before, offsets[m.score_groups(64, 96)], atol=1e-5)
    onnx_logits = Detector.from_model(m, "onnxruntime").run_network(x.numpy())[1][0]
    np.testing.assert_allclose(onnx_logits, after, atol=1e-4)


def test_weights_saved_before_offsets_existed_load_with_none(tmp_path):
    m = _model()
    path = io.save_weights(m, tmp_path / "s.safetensors")
    state = load_file(path)
    meta = io.read_metadata(path)
    del state["head.score_offsets"]
    save_file(state, str(path), metadata=meta)
    loaded = io.load_model(path)
    assert torch.equal(loaded.head.score_offsets, torch.zeros(3, 2))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x)[1], m(x)[1], atol=1e-6)


def test_offsets_of_another_shape_are_refused(tmp_path):
    m = _model()
    path = io.save_weights(m, tmp_path / "s.safetensors")
    state = load_file(path)
    state["head.score_offsets"] = torch.zeros(3, 3)
    save_file(state, str(path), metadata=io.read_metadata(path))
    with pytest.raises(FacespotError):
        io.load_model(path)
