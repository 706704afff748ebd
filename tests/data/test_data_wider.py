"""WIDER FACE text ground truth: parse, round-trip, strict errors, folder layouts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from facespot.data.wider import ATTRIBUTES, WiderFace, read_wider_gt, write_wider_gt
from facespot.errors import FacespotError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "wider"
GT = FIX / "wider_face_split" / "wider_face_val_bbx_gt.txt"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_parse_fixture() -> None:
    recs = read_wider_gt(GT, FIX / "images")
    assert [r.name for r in recs] == [
        "0--Parade/0_Parade_marchingband_1_1",
        "0--Parade/0_Parade_marchingband_1_2",
        "1--Handshaking/1_Handshaking_x_3",
    ]
    # x y w h -> x1 y1 x2 y2
    np.testing.assert_array_equal(recs[0].boxes, [[10, 8, 30, 24], [30, 4, 30, 9]])
    assert recs[0].attributes["blur"].tolist() == [1, 2]
    assert recs[0].attributes["invalid"].tolist() == [0, 1]
    assert len(recs[1]) == 0  # zero count + dummy line
    np.testing.assert_array_equal(recs[2].boxes, [[5, 5, 8, 7]])
    assert [int(recs[2].attributes[a][0]) for a in ATTRIBUTES] == [0, 1, 1, 0, 2, 1]
    assert recs[2].image_path == FIX / "images" / "1--Handshaking" / "1_Handshaking_x_3.jpg"
    assert recs[0].landmarks is None


def test_round_trip(tmp_path: Path) -> None:
    recs = read_wider_gt(GT, FIX / "images")
    out = tmp_path / "gt.txt"
    write_wider_gt(recs, out)
    again = read_wider_gt(out, FIX / "images")
    assert [r.name for r in again] == [r.name for r in recs]
    for a, b in zip(recs, again):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        for k in ATTRIBUTES:
            np.testing.assert_array_equal(a.attributes[k], b.attributes[k])
    # the writer reproduces the official text exactly (including the zero-count dummy line)
    assert out.read_text().split() == GT.read_text().split()


def _bad(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "wider_face_val_bbx_gt.txt"
    p.write_text(body)
    return p


@pytest.mark.parametrize(
    "body, message",
    [
        ("a/b.jpg\n1\n1 2 3 4 0 0 0 0 0\n", r"gt\.txt:3: expected 10 fields .* found 9"),
        ("a/b.jpg\n1\n1 2 x 4 0 0 0 0 0 0\n", r"gt\.txt:3: expected 10 numbers"),
        ("a/b.jpg\n1\n1 2 -3 4 0 0 0 0 0 0\n", r"gt\.txt:3: negative box size w=-3 h=4"),
        ("a/b.jpg\n1\n1 2 3 4 0.5 0 0 0 0 0\n", r"gt\.txt:3: attribute fields .* must be integers"),
        ("a/b.jpg\n3\n1 2 3 4 0 0 0 0 0 0\na/c.jpg\n0\n", r"gt\.txt:4: count mismatch for 'a/b.jpg': the count says 3 .* only 1"),
        ("a/b.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n1 2 3 4 0 0 0 0 0 0\n", r"gt\.txt:4: count mismatch for 'b.jpg'.* more face lines"),
        ("a/b.jpg\n3\n1 2 3 4 0 0 0 0 0 0\n", r"gt\.txt:3: file ends inside 'a/b.jpg': the count says 3 face line\(s\), found 1"),
        ("a/b.jpg\n", r"gt\.txt:1: file ends after image line"),
        ("a/b.jpg\nmany\n", r"gt\.txt:2: expected the number of faces"),
        ("1 2 3 4\n", r"gt\.txt:1: expected an image path line"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(FacespotError, match=message):
        read_wider_gt(_bad(tmp_path, body))


def test_negative_size_allowed_on_request(tmp_path: Path) -> None:
    p = _bad(tmp_path, "a/b.jpg\n1\n10 2 -3 4 0 0 0 0 0 0\n")
    (rec,) = read_wider_gt(p, allow_negative=True)
    np.testing.assert_array_equal(rec.boxes, [[10, 2, 7, 6]])  # kept, degenerate


def test_zero_count_without_dummy_line(tmp_path: Path) -> None:
    p = _bad(tmp_path, "a/b.jpg\n0\na/c.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n")
    recs = read_wider_gt(p)
    assert [len(r) for r in recs] == [0, 1]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FacespotError, match="ground-truth file not found"):
        read_wider_gt(tmp_path / "none.txt")


def test_widerface_dev_layout_and_filters() -> None:
    ds = WiderFace(FIX, split="val")  # drop_invalid: the w=0, invalid=1 box goes
    assert len(ds) == 3 and ds.skipped == 0
    assert [len(r) for r in ds] == [1, 0, 1]
    assert [len(r) for r in WiderFace(FIX, "val", drop_invalid=False)] == [2, 0, 1]
    small = WiderFace(FIX, "val", min_size=4)  # the 3x2 face is dropped, the 20x16 kept
    assert [len(r) for r in small] == [1, 0, 0]
    assert small[0].attributes["blur"].tolist() == [1]


def test_widerface_official_layout(tmp_path: Path) -> None:
    root = tmp_path / "WIDER"
    shutil.copytree(FIX / "wider_face_split", root / "wider_face_split")
    shutil.copytree(FIX / "images", root / "WIDER_val" / "images")
    ds = WiderFace(root, "val")
    assert ds.image_root == root / "WIDER_val" / "images"
    assert all(r.image_path.is_file() for r in ds)
    with pytest.raises(FacespotError, match=r"no WIDER FACE train annotations; expected .*wider_face_train_bbx_gt\.txt"):
        WiderFace(root, "train")
    with pytest.raises(FacespotError, match="split must be one of"):
        WiderFace(root, "test")


def test_widerface_missing_images(tmp_path: Path) -> None:
    root = tmp_path / "w"
    shutil.copytree(FIX, root)
    (root / "images" / "0--Parade" / "0_Parade_marchingband_1_2.jpg").unlink()
    with pytest.raises(FacespotError, match=r"1 of 3 listed images are missing .*0_Parade_marchingband_1_2\.jpg"):
        WiderFace(root, "val")
    ds = WiderFace(root, "val", missing="skip")
    assert len(ds) == 2 and ds.skipped == 1
    assert len(WiderFace(root, "val", missing="keep")) == 3


def test_real_wider_val_eval_and_its_dev100_subset() -> None:
    root = SHARED / "wider-val-eval"
    dev100 = SHARED / "widerface" / "splits" / "dev100.txt"
    if not root.is_dir() or not dev100.is_file():
        pytest.skip("shared WIDER eval data not present")
    ds = WiderFace(root, "val", drop_invalid=False)
    assert (len(ds), sum(len(r) for r in ds)) == (500, 8553)
    dev = {line.strip()[: -len(".jpg")] for line in dev100.read_text().splitlines() if line.strip()}
    sub = [r for r in ds if r.name in dev]
    assert len(sub) == 100
    assert sum(len(r) for r in sub) == 2656


def test_real_wider_val_text() -> None:
    gt = SHARED / "widerface" / "wider_face_val_bbx_gt.txt"
    if not gt.is_file():
        pytest.skip("official WIDER val text not present")
    with pytest.raises(FacespotError, match=r"negative box size w=-2 h=23"):
        read_wider_gt(gt)  # the official file holds one such box
    recs = read_wider_gt(gt, allow_negative=True)
    assert len(recs) == 3226
    assert sum(len(r) for r in recs) == 39708
