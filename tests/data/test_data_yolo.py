"""YOLO labels: normalised -> pixel boxes with header-read sizes, class filter, strict errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from facespot.data.yolo import parse_label_file, read_yolo
from facespot.errors import FacespotError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "yolo"


def test_read_fixture() -> None:
    a, b = read_yolo(FIX)
    assert (a.name, b.name) == ("a", "b")
    assert a.size == (64, 48) and b.size == (32, 32)
    # 0.5 0.5 0.25 0.5 in 64x48 -> centre (32, 24), size 16x24
    np.testing.assert_allclose(a.boxes, [[24, 12, 40, 36], [12, 6, 20, 18]])
    assert a.attributes["class_id"].tolist() == [0, 1]
    assert len(b) == 0  # no label file: a negative image


def test_face_classes() -> None:
    a, _ = read_yolo(FIX, face_classes=[1])
    np.testing.assert_allclose(a.boxes, [[12, 6, 20, 18]])


@pytest.mark.parametrize(
    "body, message",
    [
        ("0 0.5 0.5 0.2\n", r"l\.txt:1: expected 5 fields 'class cx cy w h', found 4"),
        ("0 0.5 0.5 0.2 0.2\n0 0.5 x 0.2 0.2\n", r"l\.txt:2: expected numbers"),
        ("1.5 0.5 0.5 0.2 0.2\n", r"l\.txt:1: class id must be a non-negative integer"),
        ("0 0.5 0.5 -0.2 0.2\n", r"l\.txt:1: negative box size"),
        ("0 12 30 8 8\n", r"l\.txt:1: expected coordinates normalised to 0..1"),
    ],
)
def test_errors(tmp_path: Path, body: str, message: str) -> None:
    p = tmp_path / "l.txt"
    p.write_text(body)
    with pytest.raises(FacespotError, match=message):
        parse_label_file(p, 100, 100)


def test_orphan_label_and_bad_layout(tmp_path: Path) -> None:
    root = tmp_path / "y"
    shutil.copytree(FIX, root)
    (root / "labels" / "ghost.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(FacespotError, match=r"1 label file\(s\) have no image .*ghost\.txt"):
        read_yolo(root)
    with pytest.raises(FacespotError, match="not a YOLO folder"):
        read_yolo(tmp_path)
