"""Training packs: what goes in comes back (pixels, faces, repeats), and training reads them."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facespot.data.negatives import synthetic_records
from facespot.data.records import FaceRecord
from facespot.errors import FacespotError
from facespot.images import read_image
from facespot.train.pack import Pack, write_pack

from .tiny_model import TinyNet

FIX = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "train"


def _records():
    meta = json.loads((FIX / "faces.json").read_text())
    return [FaceRecord(FIX / m["image"], m["boxes"], m["landmarks"]) for m in meta]


def test_raw_pack_roundtrip_scales_faces_keeps_repeats_and_skips_bad(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8garbage")
    recs = _records()[:2] + [FaceRecord(bad, [[0, 0, 5, 5]])] + synthetic_records(1)
    with pytest.warns(UserWarning, match="left out 1"):
        write_pack(recs, tmp_path / "p", max_side=128, repeats=[2.0, 1.0, 1.0, 0.5])
    pack = Pack(tmp_path / "p")
    assert len(pack) == 3 and pack.skipped[0]["name"] == "bad" and pack.repeats() == [2.0, 1.0, 0.5]
    want = cv2.resize(read_image(recs[0].image_path), (128, 128), interpolation=cv2.INTER_AREA)
    assert np.array_equal(pack.image(0), want)
    r = pack.records()
    assert np.allclose(r[0].boxes, recs[0].boxes / 2, atol=1e-3)
    assert np.allclose(r[1].landmarks, recs[1].landmarks / 2, atol=1e-3)
    assert r[0].size == (128, 128) and r[0].name == recs[0].name
    assert len(r[2]) == 0 and pack.image(2).ndim == 3  # synthetic frames are rendered, not stored


def test_ignore_regions_of_an_overlay_are_packed_and_scaled(tmp_path):
    rec = _records()[0]
    rec.ignore_boxes = np.array([[10, 20, 50, 60]], np.float32)
    write_pack([rec, _records()[1]], tmp_path / "p", max_side=128)
    back = Pack(tmp_path / "p").records()
    np.testing.assert_allclose(back[0].ignore_boxes, [[5, 10, 25, 30]], atol=1e-3)  # 256 -> 128 px
    assert back[1].ignore_boxes is None


def test_a_record_with_landmarks_but_no_faces_packs(tmp_path):
    rec = FaceRecord(_records()[0].image_path, np.zeros((0, 4)), np.zeros((0, 5, 2)))
    write_pack([rec], tmp_path / "p", max_side=64)
    back = Pack(tmp_path / "p").records()[0]
    assert len(back) == 0 and back.landmarks is None


def test_webp_pack_is_small_and_close(tmp_path):
    recs = _records()
    write_pack(recs, tmp_path / "raw", 256)
    write_pack(recs, tmp_path / "webp", 256, encoding="webp", quality=80)
    raw, webp = Pack(tmp_path / "raw"), Pack(tmp_path / "webp")
    assert (tmp_path / "webp/images.bin").stat().st_size < (tmp_path / "raw/images.bin").stat().st_size / 5
    diff = np.abs(raw.image(0).astype(int) - webp.image(0).astype(int)).mean()
    assert diff < 6, diff


def test_not_a_pack_is_a_clear_error(tmp_path):
    with pytest.raises(FacespotError, match="not a training pack"):
        Pack(tmp_path)


def test_training_from_a_pack_never_sees_validation_images(tmp_path):
    from facespot.train.config import config_from_dict
    from facespot.train.loop import train

    records = _records()
    write_pack(records, tmp_path / "p", 128)
    cfg = config_from_dict({
        "model": {"name": "faceboxes"},
        "data": {"pack": str(tmp_path / "p"), "input_size": [64, 64], "val_limit": None},
        "epochs": 1, "batch_size": 1, "workers": 0, "val_every": 0, "out_dir": str(tmp_path / "run"),
        "optim": {"name": "adamw", "lr": 1e-3},
    }, "t.yaml")
    torch.manual_seed(0)
    res = train(cfg, model=TinyNet(), val_records=[records[0]], progress=False)
    assert len(res.step_losses) == len(records) - 1  # one image per step: all but the validation one


def test_pack_cli_writes_a_pack_of_the_recipe(tmp_path, capsys, monkeypatch):
    from facespot.cli import main

    monkeypatch.chdir(FIX.parents[2])
    assert main(["data", "pack", str(FIX / "tiny.yaml"), str(tmp_path / "p"), "--max-side", "64", "--encode", "jpeg"]) == 0
    assert "packed 4 images" in capsys.readouterr().out
    assert len(Pack(tmp_path / "p")) == 4 and max(Pack(tmp_path / "p").image(0).shape[:2]) == 64
    assert main(["data", "pack", str(FIX / "tiny.yaml"), str(tmp_path / "q"), "--quality", "0"]) == 2
    # --set narrows or extends the recipe's sources, as for facespot train
    capsys.readouterr()
    assert main(["data", "pack", str(FIX / "tiny.yaml"), str(tmp_path / "r"), "--max-side", "32",
                 "--set", "data.train=[{format: synthetic, options: {count: 3}}]"]) == 0
    assert "packed 3 images" in capsys.readouterr().out and len(Pack(tmp_path / "r").records()[0]) == 0
