"""Prediction files: round trips and one test per bad-input message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facespot.data.predictions import (
    read_fddb_detections,
    read_image_list,
    read_prediction_file,
    read_wider_predictions,
    write_fddb_detections,
    write_wider_predictions,
)
from facespot.errors import FacespotError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "eval"

KEYS = ["0--Parade/0_Parade_a", "0--Parade/0_Parade_b", "1--Handshaking/1_Handshaking_c"]


def test_fixture_folder_reads_to_xyxy_and_score():
    p = read_wider_predictions(FIXTURES / "wider_pred", known=set(KEYS))
    assert sorted(p.boxes) == KEYS and p.unknown == []
    # "10 10 40 40 0.9" -> x1 y1 x2 y2 = 10 10 50 50
    np.testing.assert_allclose(p.boxes["0--Parade/0_Parade_a"][0], [10, 10, 50, 50, 0.9])
    assert p.boxes["0--Parade/0_Parade_b"].shape == (2, 5)


def test_wider_round_trip(tmp_path):
    preds = {
        "0--Parade/x": np.array([[1.5, 2.25, 11.5, 22.25, 0.875], [0, 0, 0, 0, 0.1]]),
        "9--Press/y": np.zeros((0, 5)),
    }
    write_wider_predictions(tmp_path, preds)
    assert (tmp_path / "0--Parade" / "x.txt").read_text().splitlines()[:3] == ["x.jpg", "2", "1.500 2.250 10.000 20.000 0.875000"]
    back = read_wider_predictions(tmp_path)
    assert sorted(back.boxes) == sorted(preds)
    for k in preds:
        np.testing.assert_allclose(back.boxes[k], preds[k], atol=1e-6)


def _write(tmp_path, text, name="0--Parade/img.txt"):
    f = tmp_path / name
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text)
    return f


@pytest.mark.parametrize(
    "text, message",
    [
        ("img.jpg\n1\n1 2 3 4\n", r"img\.txt:3: expected 5 numbers 'x y w h score', got 4 field\(s\)"),
        ("img.jpg\n1\n1 2 3 4 0.5 7\n", r"img\.txt:3: expected 5 numbers .* got 6"),
        ("img.jpg\n2\n1 2 3 4 0.5\n1 2 three 4 0.5\n", r"img\.txt:4: not a number: 'three'"),
        ("img.jpg\n1\n1 2 3 4 nan\n", r"img\.txt:3: not a finite number"),
        ("img.jpg\n1\n1 2 -3 4 0.5\n", r"img\.txt:3: negative width or height"),
        ("img.jpg\n3\n1 2 3 4 0.5\n", r"img\.txt:2: says 3 box\(es\) but the file has 1 box line\(s\)"),
        ("img.jpg\n0\n1 2 3 4 0.5\n", r"img\.txt:2: says 0 box\(es\) but the file has 1"),
        ("img.jpg\nmany\n", r"img\.txt:2: expected the number of boxes \(an integer\), got 'many'"),
        ("img.jpg\n-1\n", r"img\.txt:2: the number of boxes cannot be negative"),
        ("other.jpg\n0\n", r"img\.txt:1: line 1 names image 'other\.jpg' but the file is for 'img'"),
        ("img.jpg\n", r"img\.txt: missing line 2"),
        ("", r"img\.txt: empty file"),
    ],
)
def test_bad_prediction_file_messages(tmp_path, text, message):
    f = _write(tmp_path, text)
    with pytest.raises(FacespotError, match=message):
        read_prediction_file(f)


def test_lenient_but_exact_formats(tmp_path):
    # full path on line 1, "2.0" as count, tabs, trailing blank lines: all fine
    f = _write(tmp_path, "0--Parade/img.jpg\n2.0\n1\t2 3 4 0.5\n5 6 0 0 0.25\n\n\n")
    name, boxes = read_prediction_file(f)
    assert name == "0--Parade/img.jpg"
    np.testing.assert_allclose(boxes, [[1, 2, 4, 6, 0.5], [5, 6, 5, 6, 0.25]])


def test_folder_errors(tmp_path):
    with pytest.raises(FacespotError, match="prediction folder not found"):
        read_wider_predictions(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FacespotError, match=r"empty: no prediction files; expected <event>/<name>\.txt"):
        read_wider_predictions(tmp_path / "empty")
    # a .txt at the top level means the event folders are missing
    _write(tmp_path, "b.jpg\n0\n", "stray/b.txt")
    (tmp_path / "stray" / "0--Parade").mkdir()
    with pytest.raises(FacespotError, match=r"stray: found b\.txt directly in the folder"):
        read_wider_predictions(tmp_path / "stray")


def test_unknown_image_is_an_error_unless_allowed(tmp_path):
    _write(tmp_path, "img.jpg\n0\n", "0--Parade/img.txt")
    _write(tmp_path, "typo.jpg\n0\n", "0--Parade/typo.txt")
    with pytest.raises(FacespotError, match=r"typo\.txt: image '0--Parade/typo' is not in the ground truth .*--allow-unknown"):
        read_wider_predictions(tmp_path, known={"0--Parade/img"})
    p = read_wider_predictions(tmp_path, known={"0--Parade/img"}, allow_unknown=True)
    assert list(p.boxes) == ["0--Parade/img"] and p.unknown == ["0--Parade/typo"]


def test_only_restricts_which_files_are_read(tmp_path):
    _write(tmp_path, "img.jpg\n0\n", "0--Parade/img.txt")
    _write(tmp_path, "broken\n", "0--Parade/other.txt")  # never opened
    p = read_wider_predictions(tmp_path, only={"0--Parade/img"})
    assert list(p.boxes) == ["0--Parade/img"]


def test_image_list(tmp_path):
    keys = read_image_list(FIXTURES / "images_parade.txt", KEYS)
    assert keys == ["0--Parade/0_Parade_a", "0--Parade/0_Parade_b"]
    bad = tmp_path / "list.txt"
    bad.write_text("0--Parade/0_Parade_a\n\n0--Parade/0_Parade_z.jpg\n")
    with pytest.raises(FacespotError, match=r"list\.txt:3: image '0--Parade/0_Parade_z\.jpg' is not in the ground truth"):
        read_image_list(bad, KEYS)
    bad.write_text("0_Parade_a\n0--Parade/0_Parade_a.jpg\n")
    with pytest.raises(FacespotError, match=r"list\.txt:2: .* is listed twice"):
        read_image_list(bad, KEYS)
    bad.write_text("# nothing\n")
    with pytest.raises(FacespotError, match=r"list\.txt: the image list is empty"):
        read_image_list(bad, KEYS)
    with pytest.raises(FacespotError, match="image list not found"):
        read_image_list(tmp_path / "missing.txt", KEYS)


# --------------------------------------------------------------------------- FDDB


def test_fddb_round_trip(tmp_path):
    d = {"2002/08/11/big/img_591": np.array([[10, 20, 110, 170, 0.99], [0, 0, 5, 5, 0.1]]), "2003/01/01/big/img_1": np.zeros((0, 5))}
    f = tmp_path / "det.txt"
    write_fddb_detections(f, d)
    assert f.read_text().splitlines()[:3] == ["2002/08/11/big/img_591", "2", "10.000 20.000 100.000 150.000 0.990000"]
    back = read_fddb_detections(f)
    assert list(back) == list(d)
    np.testing.assert_allclose(back["2002/08/11/big/img_591"], d["2002/08/11/big/img_591"])
    assert back["2003/01/01/big/img_1"].shape == (0, 5)


def test_fddb_name_normalisation(tmp_path):
    f = tmp_path / "det.txt"
    f.write_text("./2002/08/11/big/img_591.jpg\n1\n1 2 3 4 0.5\n")
    assert list(read_fddb_detections(f)) == ["2002/08/11/big/img_591"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("a/img_1\n1\n1 2 3 4 0.5\n1 2 3 4 0.5\n", r"det\.txt:4: expected an image name, got '1 2 3 4 0\.5'"),
        ("a/img_1\n2\n1 2 3 4 0.5\n", r"det\.txt:2: says 2 box\(es\) for 'a/img_1' but only 1 line"),
        ("a/img_1\n", r"det\.txt:1: image 'a/img_1' has no count line"),
        ("a/img_1\n0\na/img_1\n0\n", r"det\.txt:3: image 'a/img_1' appears twice \(first at line 1\)"),
        ("a/img_1\n1\n1 2 3 x 0.5\n", r"det\.txt:3: not a number: 'x'"),
        ("a/img_1\n1\n1 2 3 -4 0.5\n", r"det\.txt:3: negative width or height"),
        ("\n\n", r"det\.txt: empty detection file"),
    ],
)
def test_bad_fddb_file_messages(tmp_path, text, message):
    f = tmp_path / "det.txt"
    f.write_text(text)
    with pytest.raises(FacespotError, match=message):
        read_fddb_detections(f)
    with pytest.raises(FacespotError, match="detection file not found"):
        read_fddb_detections(tmp_path / "none.txt")
