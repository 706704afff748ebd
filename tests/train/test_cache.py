"""Decoded-image cache and the batched (GPU-side) crop/resize, exercised on CPU."""

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from facespot.data.records import FaceRecord
from facespot.images import read_image
from facespot.train.cache import ImageCache, gpu_crop_resize, write_cache

from .tiny_model import TinyNet

FIX = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "train"


def _records():
    meta = json.loads((FIX / "faces.json").read_text())
    return [FaceRecord(FIX / m["image"], m["boxes"], m["landmarks"]) for m in meta]


def test_cache_roundtrip_scales_boxes_and_skips_bad(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8garbage")
    recs = _records()[:2] + [FaceRecord(bad, [[0, 0, 5, 5]])]
    import warnings

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        write_cache(recs, tmp_path / "c", side=128)
    assert any("left out 1" in str(x.message) for x in w)
    cache = ImageCache(tmp_path / "c")
    assert len(cache) == 2 and cache.skipped[0]["name"] == "bad"
    want = cv2.resize(read_image(recs[0].image_path), (128, 128), interpolation=cv2.INTER_AREA)
    assert np.array_equal(cache.image(0), want)
    r = cache.records()
    assert np.allclose(r[0].boxes, recs[0].boxes / 2, atol=1e-3)
    assert np.allclose(r[1].landmarks, recs[1].landmarks / 2, atol=1e-4)
    assert r[0].size == (128, 128)


def test_crop_resize_is_exact_at_unit_scale_and_flips():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (2, 128, 128, 3), dtype=np.uint8)
    crops = torch.tensor([[32.0, 16.0, 64.0], [0.0, 0.0, 64.0]])
    boxes = [torch.tensor([[40.0, 20.0, 60.0, 40.0], [0.0, 0.0, 10.0, 10.0]]), torch.tensor([[10.0, 10.0, 30.0, 20.0]])]
    out, ob = gpu_crop_resize(torch.from_numpy(img), boxes, crops, (64, 64), flip=torch.tensor([False, True]))
    assert np.array_equal(out[0].numpy(), img[0, 16:80, 32:96])
    assert np.array_equal(out[1].numpy(), img[1, 0:64, 0:64][:, ::-1])
    # face 0: (40-32)/64 .. ; face 1 (centre 5,5) is outside the crop -> dropped
    assert torch.allclose(ob[0], torch.tensor([[8 / 64, 4 / 64, 28 / 64, 24 / 64]]))
    assert torch.allclose(ob[1], torch.tensor([[1 - 30 / 64, 10 / 64, 1 - 10 / 64, 20 / 64]]))
    # downscale by 2: the mean of 2x2 blocks (bilinear at pixel-edge alignment)
    out2, _ = gpu_crop_resize(torch.from_numpy(img[:1]), [torch.zeros(0, 4)], torch.tensor([[0.0, 0.0, 128.0]]), (64, 64))
    ref = img[0].reshape(64, 2, 64, 2, 3).astype(np.float32).mean((1, 3))
    assert np.abs(out2[0].numpy().astype(np.float32) - ref).max() <= 1.0


def test_training_from_cache_with_gpu_augment_on_cpu(tmp_path):
    from facespot.train.config import config_from_dict
    from facespot.train.loop import train

    write_cache(_records(), tmp_path / "c", side=128)
    cfg = config_from_dict({
        "model": {"name": "faceboxes"},
        "data": {"cache": str(tmp_path / "c"), "gpu_augment": True, "input_size": [64, 64]},
        "epochs": 2, "batch_size": 2, "workers": 0, "val_every": 0, "out_dir": str(tmp_path / "run"),
        "optim": {"name": "adamw", "lr": 1e-3},
    }, "t.yaml")
    torch.manual_seed(0)
    res = train(cfg, model=TinyNet(), progress=False)
    assert res.epochs_done == 2 and len(res.step_losses) == 4 and all(np.isfinite(res.step_losses))


def test_cached_training_never_sees_validation_images(tmp_path):
    from facespot.train.config import config_from_dict
    from facespot.train.loop import train

    records = _records()
    write_cache(records, tmp_path / "c", side=128)
    val = [records[0]]
    cfg = config_from_dict({
        "model": {"name": "faceboxes"},
        "data": {"cache": str(tmp_path / "c"), "input_size": [64, 64], "val_limit": None},
        "epochs": 1, "batch_size": 1, "workers": 0, "val_every": 0, "out_dir": str(tmp_path / "run"),
        "optim": {"name": "adamw", "lr": 1e-3},
    }, "t.yaml")
    torch.manual_seed(0)
    res = train(cfg, model=TinyNet(), val_records=val, progress=False)
    # one image per step: every cached image but the validation one
    assert len(res.step_losses) == len([r for r in records if r.image_path.is_file()]) - 1
