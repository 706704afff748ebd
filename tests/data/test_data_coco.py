"""COCO JSON: face categories, xywh -> xyxy, strict structural errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facespot.data.coco import read_coco
from facespot.errors import FacespotError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "coco"


def test_read_fixture_face_category_by_name() -> None:
    c1, c2 = read_coco(FIX / "annotations.json")
    assert (c1.name, c2.name) == ("c1", "c2")
    np.testing.assert_allclose(c1.boxes, [[10, 20, 40, 45], [2.5, 3.5, 6.5, 9.5]])  # the person box is not a face
    assert c1.attributes["iscrowd"].tolist() == [0, 1]
    assert len(c2) == 0 and c2.size == (64, 48)
    assert c1.image_path == FIX / "images" / "c1.jpg"


def test_category_ids() -> None:
    c1, _ = read_coco(FIX / "annotations.json", category_ids=[2])
    np.testing.assert_allclose(c1.boxes, [[0, 0, 64, 48]])
    with pytest.raises(FacespotError, match=r"category id\(s\) \[9\] not in categories"):
        read_coco(FIX / "annotations.json", category_ids=[9])


def _write(tmp_path: Path, data: object) -> Path:
    p = tmp_path / "a.json"
    p.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return p


BASE = {"images": [{"id": 1, "file_name": "x.jpg"}], "categories": [{"id": 1, "name": "face"}]}


@pytest.mark.parametrize(
    "data, message",
    [
        ('{"images": [\n  1,\n  }', r"a\.json:3: not valid JSON"),
        ({"annotations": []}, r"a\.json: the file lacks the key 'images'"),
        ({**BASE, "annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}]}, r"annotations\[0\]\['bbox'\] must have 4 numbers"),
        ({**BASE, "annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 2, -3, 4]}]}, r"annotations\[0\] has a negative box size"),
        ({**BASE, "annotations": [{"image_id": 5, "category_id": 1, "bbox": [1, 2, 3, 4]}]}, r"annotations\[0\] refers to image id 5"),
        ({**BASE, "annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, "2", 3, 4]}]}, r"must hold numbers"),
        ({**BASE, "annotations": [{"image_id": 1, "category_id": 1}]}, r"annotations\[0\] lacks the key 'bbox'"),
        ({**BASE, "categories": [{"id": 1, "name": "car"}], "annotations": []}, r"no category name contains 'face'"),
    ],
)
def test_errors(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(FacespotError, match=message):
        read_coco(_write(tmp_path, data))
