"""Caltech Web Faces: the landmark -> box rule on numbers, grouping, strict errors, real counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facespot.data.caltech import box_from_landmarks, read_caltech
from facespot.errors import FacespotError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "caltech"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_box_rule_frontal() -> None:
    # eyes (40,50) (60,50), nose (50,60), mouth (50,70): eye mid (50,50), d_em = d_ee = 20
    # centre = (50, 50 + 0.4*20) = (50, 58); side = max(2.4*20, 2.1*20) = 48
    box = box_from_landmarks([[[40, 50], [60, 50], [50, 60], [50, 70]]])
    np.testing.assert_allclose(box, [[26, 34, 74, 82]], atol=1e-5)


def test_box_rule_turned_head_uses_eye_mouth_distance() -> None:
    # eyes only 4 px apart (profile): the side still comes from d_em = 20 -> 48
    box = box_from_landmarks([[[48, 50], [52, 50], [50, 60], [50, 70]]])
    np.testing.assert_allclose(box, [[26, 34, 74, 82]], atol=1e-5)


def test_box_rule_nodding_head_uses_eye_distance() -> None:
    # mouth 5 px below the eyes, eyes 40 apart: side = 2.1*40 = 84, centre (50, 52)
    box = box_from_landmarks([[[30, 50], [70, 50], [50, 53], [50, 55]]])
    np.testing.assert_allclose(box, [[8, 10, 92, 94]], atol=1e-5)


def test_read_fixture_groups_by_file() -> None:
    recs = read_caltech(FIX / "WebFaces_GroundThruth.txt")
    assert [r.name for r in recs] == ["pic00001", "pic00002"]
    assert [len(r) for r in recs] == [2, 1]
    assert recs[0].landmarks.shape == (2, 4, 2)
    np.testing.assert_allclose(recs[0].landmarks[0], [[40, 50], [60, 50], [50, 60], [50, 70]])
    np.testing.assert_allclose(recs[0].boxes, [[26, 34, 74, 82], [26, 34, 74, 82]], atol=1e-5)
    assert recs[0].image_path == FIX / "images" / "pic00001.jpg"
    assert recs[0].image_path.is_file()


@pytest.mark.parametrize(
    "body, message",
    [
        ("a.jpg 1 2 3 4 5 6 7\n", r"gt\.txt:1: expected an image name and 8 numbers .* found 8 fields"),
        ("a.jpg 1 2 3 4 5 6 7 8\nb.jpg 1 2 3 4 5 6 7 z\n", r"gt\.txt:2: expected 8 numbers"),
        ("a.jpg 1 2 3 4 5 6 7 nan\n", r"gt\.txt:1: landmark coordinates must be finite"),
        ("\n\n", r"gt\.txt: no faces found"),
    ],
)
def test_errors(tmp_path: Path, body: str, message: str) -> None:
    p = tmp_path / "gt.txt"
    p.write_text(body)
    with pytest.raises(FacespotError, match=message):
        read_caltech(p)


def test_real_counts() -> None:
    gt = SHARED / "caltech-webfaces" / "WebFaces_GroundThruth.txt"
    if not gt.is_file():
        pytest.skip("shared Caltech data not present")
    recs = read_caltech(gt)
    assert len(recs) == 7092
    assert sum(len(r) for r in recs) == 10524
    assert recs[0].image_path.is_file()
    # boxes come out square and of plausible size for these ~300 px photos
    sides = np.concatenate([r.boxes[:, 2] - r.boxes[:, 0] for r in recs])
    assert 30 < float(np.median(sides)) < 150
