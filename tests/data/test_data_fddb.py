"""FDDB folds: ellipse -> box rule on numbers, fold selection, strict errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from facespot.data.fddb import ellipse_to_box, read_ellipses, read_fold_file, read_folds
from facespot.errors import FacespotError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "fddb"
FOLDS = FIX / "FDDB-folds"


def test_unrotated_ellipse_gives_2a_by_2b() -> None:
    box = ellipse_to_box([[20, 10, 0, 32, 24]])
    np.testing.assert_allclose(box, [[12, 14, 52, 34]])


def test_quarter_turn_swaps_axes() -> None:
    box = ellipse_to_box([[20, 10, math.pi / 2, 30, 30]])
    np.testing.assert_allclose(box, [[20, 10, 40, 50]], atol=1e-4)


def test_45_degrees() -> None:
    # hx = hy = sqrt(a^2/2 + b^2/2) = sqrt(8 + 2) for a=4, b=2
    box = ellipse_to_box([[4, 2, math.pi / 4, 15, 15]])
    h = math.sqrt(10)
    np.testing.assert_allclose(box, [[15 - h, 15 - h, 15 + h, 15 + h]], atol=1e-5)


def test_circle_is_rotation_invariant() -> None:
    boxes = ellipse_to_box([[5, 5, t, 0, 0] for t in (0.0, 0.3, 1.0, 2.5)])
    np.testing.assert_allclose(boxes, [[-5, -5, 5, 5]] * 4, atol=1e-5)


def test_read_all_folds() -> None:
    recs = read_folds(FOLDS, FIX / "originalPics")
    assert [r.name for r in recs] == ["2002/08/11/big/img_591", "2002/08/26/big/img_265", "2003/01/13/big/img_1"]
    assert [len(r) for r in recs] == [1, 2, 1]
    np.testing.assert_allclose(recs[0].boxes, [[12, 14, 52, 34]])
    np.testing.assert_allclose(recs[2].boxes, [[12, 14, 28, 26]])
    assert recs[0].image_path == FIX / "originalPics" / "2002/08/11/big/img_591.jpg"
    assert all(r.image_path.is_file() for r in recs)


def test_fold_selection() -> None:
    assert [r.name for r in read_folds(FOLDS, FIX / "originalPics", folds=[2])] == ["2003/01/13/big/img_1"]
    assert len(read_folds(FOLDS, FIX, folds=(1,))) == 2
    with pytest.raises(FacespotError, match=r"fold 3 not found \(expected FDDB-fold-03-ellipseList\.txt\)"):
        read_folds(FOLDS, FIX, folds=[3])


def test_read_ellipses_keeps_parameters() -> None:
    ell = read_ellipses(FOLDS, folds=[1])
    np.testing.assert_allclose(ell["2002/08/26/big/img_265"][1], [4, 2, math.pi / 4, 15, 15])


def _fold(tmp_path: Path, body: str) -> Path:
    d = tmp_path / "folds"
    d.mkdir(exist_ok=True)
    (d / "FDDB-fold-01-ellipseList.txt").write_text(body)
    return d


@pytest.mark.parametrize(
    "body, message",
    [
        ("img_1\n1\n1 2 3 4 1\n", r"ellipseList\.txt:3: expected 6 fields"),
        ("img_1\n1\n1 2 a 4 5 1\n", r"ellipseList\.txt:3: expected 6 numbers"),
        ("img_1\n1\n-1 2 0 4 5 1\n", r"ellipseList\.txt:3: negative ellipse radius"),
        ("img_1\n2\n1 2 0 4 5 1\n", r"ellipseList\.txt:3: file ends inside 'img_1'"),
        ("img_1\n2\n1 2 0 4 5 1\nimg_2\n1\n1 2 0 4 5 1\n", r"ellipseList\.txt:4: count mismatch for 'img_1'"),
        ("img_1\nx\n", r"ellipseList\.txt:2: expected the number of faces"),
        ("img_1\n1\n1 2 0 4 5 1\nimg_1\n0\n", r"listed again"),
    ],
)
def test_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(FacespotError, match=message):
        read_folds(_fold(tmp_path, body), tmp_path)


def test_no_folds(tmp_path: Path) -> None:
    with pytest.raises(FacespotError, match="no FDDB-fold-XX-ellipseList.txt files"):
        read_folds(tmp_path, tmp_path)
    with pytest.raises(FacespotError, match="folds folder not found"):
        read_folds(tmp_path / "none", tmp_path)


def test_single_file_reader() -> None:
    recs = read_fold_file(FOLDS / "FDDB-fold-02-ellipseList.txt", FIX / "originalPics")
    assert [r.name for r in recs] == ["2003/01/13/big/img_1"]
