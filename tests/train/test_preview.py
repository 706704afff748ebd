"""The preview sheet: right grid size, boxes drawn where the faces are."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from facespot.data.preview import draw_sample, write_preview
from facespot.data.augment import Sample
from facespot.data.records import FaceRecord
from facespot.errors import FacespotError

FIX = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "train"


def test_sheet_shape_and_determinism(tmp_path):
    meta = json.loads((FIX / "faces.json").read_text())
    recs = [FaceRecord(FIX / m["image"], m["boxes"], m["landmarks"]) for m in meta]
    a = write_preview(recs, tmp_path / "a.png", None, (128, 128), count=6, columns=4, tile=64, seed=1)
    b = write_preview(recs, tmp_path / "b.png", None, (128, 128), count=6, columns=4, tile=64, seed=1)
    img = cv2.imread(str(a))
    assert img.shape == (128, 256, 3)  # 2 rows x 4 columns of 64 px
    assert (img == cv2.imread(str(b))).all()


def test_box_drawn_in_green_at_scaled_position():
    s = Sample(np.zeros((100, 200, 3), np.uint8), np.array([[20, 10, 60, 50]], np.float32), name="x")
    t = draw_sample(s, tile=100)  # scale 0.5 -> box (10, 5)-(30, 25)
    assert tuple(t[5, 20]) == (0, 255, 0) and tuple(t[15, 10]) == (0, 255, 0)
    assert tuple(t[15, 20]) != (0, 255, 0)  # inside the box: background


def test_no_readable_image_is_an_error(tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"nope")
    with pytest.raises(FacespotError, match="no image could be read"):
        write_preview([FaceRecord(bad, [])], tmp_path / "o.png")
