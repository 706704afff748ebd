"""Torch-free model specs (facespot.spec) agree with the models they describe.

The ONNX Runtime path decodes with a spec instead of the torch model, so every registered
model must have one, and it must give the same anchors, normalisation, coding, keypoints,
input sizes and suppression as the model built with the same options.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facespot import spec as S
from facespot.models import available, build

# Non-default options worth checking besides each family's defaults.
VARIANTS = {
    "yolo": [{"backbone": b} for b in ("pool_resnet", "mobilenet_v3")] + [{"input_size": 416, "grid_size": 13, "boxes_per_cell": 3}],
    "grid_mobilenetv2": [{"input_size": 256, "grid_size": 16, "upsample": True}, {"reach": 0.5}],
    "tinyfaces": [{"backbone": "resnet18", "templates": [[20, 24], [40, 50]]}],
    "blazeface_front": [{"kernel_size": 3}],
    "spotnet_s": [{"num_keypoints": 5}],
}


def _cases():
    for name in available():
        yield name, {}
        for options in VARIANTS.get(name, []):
            yield name, options


@pytest.mark.parametrize("name,options", list(_cases()), ids=lambda v: str(v))
def test_spec_matches_model(name, options):
    assert S.has_spec(name), (
        f"model {name!r} has no torch-free spec: add `@register_spec({name!r})` in facespot/spec.py "
        "(the ONNX Runtime path would otherwise import torch and build the model on the meta device)"
    )
    with torch.device("meta"):
        model = build(name, **options)
    spec = S.model_spec(name, **{k: v for k, v in model.config.items() if k != "name"})
    assert spec.name == model.config["name"] == name
    assert spec.config == model.config
    assert spec.input_norm == model.input_norm and spec.coding == model.coding
    assert spec.num_keypoints == int(model.num_keypoints)
    fixed = None if model.fixed_input_size is None else tuple(model.fixed_input_size)
    assert spec.fixed_input_size == fixed
    assert spec.train_input_size == tuple(model.train_input_size)
    assert spec.suppression == model.suppression
    sizes = [fixed] if fixed else [(480, 640), (333, 517), tuple(model.train_input_size)]
    for h, w in sizes:
        np.testing.assert_array_equal(spec.anchors(h, w), np.asarray(model.anchors(h, w), np.float32))


def test_spec_preprocess_matches_model():
    model = build("faceboxes")
    spec = S.model_spec("faceboxes")
    img = np.random.default_rng(0).integers(0, 256, (2, 20, 30, 3), dtype=np.uint8)
    expected = model.preprocess(torch.from_numpy(img)).numpy()
    np.testing.assert_allclose(spec.preprocess(img), expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(spec.preprocess(torch.from_numpy(img)).numpy(), expected, rtol=0, atol=1e-5)


def test_unknown_spec_and_option_are_clear_errors():
    from facespot.errors import FacespotError

    with pytest.raises(FacespotError, match="no model spec"):
        S.model_spec("no_such_model")
    with pytest.raises(FacespotError, match="yolo"):
        S.model_spec("yolo", no_such_option=1)
