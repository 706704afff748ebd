"""Pascal VOC XML: 1-based boxes, class map, difficult flag, errors, the real face-mask set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facespot.data.voc import read_voc, read_voc_file
from facespot.errors import FacespotError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "voc"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_read_fixture_every_object_is_a_face() -> None:
    a, b = read_voc(FIX)
    assert (a.name, b.name) == ("img_a", "img_b")
    # VOC is 1-based inclusive: xmin=11..xmax=30 covers columns 10..29 -> x1=10, x2=30
    np.testing.assert_array_equal(a.boxes, [[10, 5, 30, 25], [40, 0, 64, 48]])
    assert a.attributes["difficult"].tolist() == [0, 1]
    assert a.size == (64, 48)
    assert a.image_path == FIX / "images" / "img_a.jpg"
    assert len(b) == 2
    assert b.image_path == FIX / "images" / "img_b.png"  # no <filename>: found by stem


def test_class_map_drops_and_keeps() -> None:
    a, b = read_voc(FIX, class_map={"hand": None, "sin_mascarilla": None})
    assert len(a) == 1 and len(b) == 1
    np.testing.assert_array_equal(b.boxes, [[20, 10, 40, 30]])
    with pytest.raises(FacespotError, match="expected 'face' or None"):
        read_voc(FIX, class_map={"hand": "person"})


def _xml(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "x.xml"
    p.write_text(body)
    return p


@pytest.mark.parametrize(
    "body, message",
    [
        ("<annotation><object><name>f</name></annotation>", r"x\.xml:1: not valid XML"),
        ("<root/>", r"x\.xml: expected a Pascal VOC <annotation> root"),
        ("<annotation><object><name>f</name></object></annotation>", r"x\.xml: object 1 \(f\) has no <bndbox>"),
        (
            "<annotation><object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>a</xmax><ymax>3</ymax></bndbox></object></annotation>",
            r"x\.xml: object 1 <bndbox> <xmax> must be a number, got 'a'",
        ),
        (
            "<annotation><object><bndbox><xmin>1</xmin><ymin>1</ymin><ymax>3</ymax></bndbox></object></annotation>",
            r"x\.xml: object 1 <bndbox> lacks <xmax>",
        ),
        (
            "<annotation><object><bndbox><xmin>5</xmin><ymin>1</ymin><xmax>2</xmax><ymax>3</ymax></bndbox></object></annotation>",
            r"x\.xml: object 1 has xmax < xmin",
        ),
    ],
)
def test_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(FacespotError, match=message):
        read_voc_file(_xml(tmp_path, body), tmp_path)


def test_not_a_voc_folder(tmp_path: Path) -> None:
    with pytest.raises(FacespotError, match="not a Pascal VOC folder"):
        read_voc(tmp_path)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images").mkdir()
    with pytest.raises(FacespotError, match="no .xml annotation files"):
        read_voc(tmp_path)


def test_real_facemask_counts() -> None:
    root = SHARED / "facemask-voc"
    if not root.is_dir():
        pytest.skip("shared face-mask VOC data not present")
    recs = read_voc(root)
    assert len(recs) == 853
    assert sum(len(r) for r in recs) == 4072
    assert all(r.image_path.is_file() for r in recs)
