"""``facespot eval wider`` / ``facespot eval fddb`` through the real entry point."""

from __future__ import annotations

import json
import shutil

import pytest

from facespot.cli import main

from .helpers import FIXTURES

# Hand-computed APs of tests/fixtures/eval (3 images, 8 detections). Normalised scores in
# order: D 1.0 (TP) | A .944 (TP) | C .833 (tiny face, counted in hard only) | F .722 (counted
# in medium/hard) | D-duplicate .5 (FP) | background .278 (FP) | B .056 (TP) | background 0 (FP);
# face E is never found.
#   easy   (A B D E):     R/P .25/1 .5/1 ... .75/.6            -> .5 + .25*.6       = 0.65
#   medium (A B D E F):   .2/1 .4/1 .6/1 ... .8/(4/6)          -> .6 + .2*(2/3)     = 0.7333
#   hard   (A B C D E F): 1/6..4/6 at P 1 ... 5/6 at P 5/7      -> 4/6 + 1/6*(5/7)   = 0.7857
EXPECTED = {"easy": 0.65, "medium": 11 / 15, "hard": 11 / 14}


def test_wider_success_table_json_and_plot(tmp_path, capsys):
    out_json, out_png = tmp_path / "r.json", tmp_path / "pr.png"
    rc = main([
        "eval", "wider", "--pred", str(FIXTURES / "wider_pred"), "--gt", str(FIXTURES / "wider_gt"),
        "--json", str(out_json), "--plot", str(out_png),
    ])
    out = capsys.readouterr().out
    assert rc == 0
    assert "easy     0.6500     3/3      4         4" in out
    assert "medium   0.7333" in out and "hard     0.7857" in out
    assert "SUBSET" not in out
    data = json.loads(out_json.read_text())
    for s, ap in EXPECTED.items():
        assert data["settings"][s]["ap"] == pytest.approx(ap, abs=1e-12)
    assert len(data["settings"]["hard"]["precision"]) == 1000
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out_png.stat().st_size > 10_000


def test_wider_subset_is_announced(capsys):
    rc = main([
        "eval", "wider", "--pred", str(FIXTURES / "wider_pred"), "--gt", str(FIXTURES / "wider_gt"),
        "--images", str(FIXTURES / "images_parade.txt"),
    ])
    out = capsys.readouterr().out
    assert rc == 0
    assert "SUBSET: 2 of 3 ground-truth images evaluated" in out
    # easy over the two Parade images (A B D): D A | C ignored | dup FP, bg FP, B TP
    # -> R/P 1/3 1, 2/3 1, ..., 1 3/5 -> 2/3 + 1/3 * 3/5 = 0.8667
    assert "easy     0.8667     2/3      3         4" in out


def test_wider_bad_prediction_file_exits_2_with_location(tmp_path, capsys):
    pred = tmp_path / "pred"
    shutil.copytree(FIXTURES / "wider_pred", pred)
    (pred / "0--Parade" / "0_Parade_b.txt").write_text("0_Parade_b\n2\n50 50 60 60 0.95\n52 52 60\n")
    rc = main(["eval", "wider", "--pred", str(pred), "--gt", str(FIXTURES / "wider_gt")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("facespot: error: ")
    assert "0_Parade_b.txt:4: expected 5 numbers 'x y w h score', got 3 field(s)" in err
    assert "Traceback" not in err


def test_wider_unknown_image_fails_or_warns(tmp_path, capsys):
    pred = tmp_path / "pred"
    shutil.copytree(FIXTURES / "wider_pred", pred)
    (pred / "0--Parade" / "0_Parade_zz.txt").write_text("0_Parade_zz\n0\n")
    args = ["eval", "wider", "--pred", str(pred), "--gt", str(FIXTURES / "wider_gt")]
    assert main(args) == 2
    assert "image '0--Parade/0_Parade_zz' is not in the ground truth" in capsys.readouterr().err
    assert main(args + ["--allow-unknown"]) == 0
    captured = capsys.readouterr()
    assert "warning: skipped 1 prediction file(s) not in the ground truth: 0--Parade/0_Parade_zz" in captured.err
    assert "easy     0.6500" in captured.out


def test_wider_missing_gt_exits_2(tmp_path, capsys):
    rc = main(["eval", "wider", "--pred", str(FIXTURES / "wider_pred"), "--gt", str(tmp_path)])
    assert rc == 2
    assert "wider_face_val.mat: file not found" in capsys.readouterr().err


FOLD = """2002/08/11/big/img_1
2
20 10 0 50 50 1
20 10 0 150 50 1
2002/08/12/big/img_2
1
20 10 0 50 50 1
"""
# angle 0: ellipse (a=20, b=10) at (50, 50) -> box 30 40 70 60
DETECTIONS = """2002/08/11/big/img_1
2
30 40 40 20 0.9
300 300 10 10 0.8
2002/08/12/big/img_2
1
31 40 40 20 0.7
"""


def test_fddb_success(tmp_path, capsys):
    folds = tmp_path / "FDDB-folds"
    folds.mkdir()
    (folds / "FDDB-fold-01-ellipseList.txt").write_text(FOLD)
    (tmp_path / "det.txt").write_text(DETECTIONS)
    rc = main([
        "eval", "fddb", "--pred", str(tmp_path / "det.txt"), "--folds", str(folds), "--images", str(tmp_path),
        "--fp", "0", "1", "--plot", str(tmp_path / "roc.png"), "--json", str(tmp_path / "roc.json"),
    ])
    out = capsys.readouterr().out
    assert rc == 0, out
    # (TP, FP) by score: (1, 0) (1, 1) (2, 1); 3 faces -> TPR 1/3 at 0 FP, 2/3 at 1 FP
    assert "2 images, 3 faces, 3 detections" in out
    assert "              0  0.3333" in out and "              1  0.6667" in out
    assert json.loads((tmp_path / "roc.json").read_text())["tp"] == [1, 1, 2]
    assert (tmp_path / "roc.png").stat().st_size > 5_000


def test_fddb_bad_inputs_exit_2(tmp_path, capsys):
    folds = tmp_path / "FDDB-folds"
    folds.mkdir()
    (folds / "FDDB-fold-01-ellipseList.txt").write_text(FOLD)
    (tmp_path / "det.txt").write_text("2002/08/11/big/img_9\n0\n")
    args = ["eval", "fddb", "--pred", str(tmp_path / "det.txt"), "--folds", str(folds), "--images", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "det.txt: 1 detection image(s) are not in the FDDB folds, e.g. '2002/08/11/big/img_9'" in err
