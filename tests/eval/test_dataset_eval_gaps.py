"""``facespot eval dataset`` validates everything before the model loads and never hides a
problem (issue 11, item 11): missing images (--missing), dropped negative-size WIDER boxes,
empty annotation files, numpy overflow noise on absurd boxes, option values."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from facespot.cli import main
from facespot.errors import FacespotError

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "data"
MODEL = "default"


@pytest.fixture
def no_loading(monkeypatch):
    """Fail the test if the model is loaded: these errors must come first."""
    import facespot.runtime.detector as detector

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the inputs were checked")

    monkeypatch.setattr(detector, "load", refuse)


def _voc_missing_image(tmp_path):
    voc = tmp_path / "voc"
    shutil.copytree(DATA / "voc", voc)
    (voc / "images" / "img_b.png").unlink()
    return voc


def test_missing_images_stop_before_the_model_loads(tmp_path, capsys, no_loading):
    voc = _voc_missing_image(tmp_path)
    assert main(["eval", "dataset", str(voc), "--format", "voc", "--model", MODEL]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 annotated image(s) are missing" in err and "img_b" in err and "--missing skip" in err


def test_missing_skip_leaves_them_out_with_a_warning(tmp_path, capsys):
    voc = _voc_missing_image(tmp_path)
    out = tmp_path / "r.json"
    rc = main(["eval", "dataset", str(voc), "--format", "voc", "--model", "default", "--missing", "skip", "--json", str(out)])
    assert rc == 0
    assert "left out 1 annotated image(s) missing on disk" in capsys.readouterr().err
    assert json.loads(out.read_text())["num_images"] == 1


def test_option_values_are_checked_before_the_model_loads(capsys, no_loading):
    for argv in (["--threshold", "7"], ["--landmark-threshold", "-1"], ["--iou", "0"], ["--threads", "0"]):
        assert main(["eval", "dataset", str(DATA / "voc"), "--format", "voc", "--model", MODEL, *argv]) == 2
        assert argv[0] in capsys.readouterr().err
    assert main(["eval", "dataset", str(DATA / "voc"), "--format", "voc", "--model", "/nonexistent/w.onnx"]) == 2
    assert "weights file not found" in capsys.readouterr().err


def _wider_folder(tmp_path, gt_text):
    root = tmp_path / "wider"
    shutil.copytree(DATA / "wider" / "images", root / "WIDER_val" / "images")
    (root / "wider_face_split").mkdir()
    (root / "wider_face_split" / "wider_face_val_bbx_gt.txt").write_text(gt_text)
    return root


def test_negative_size_wider_boxes_are_dropped_with_a_warning(tmp_path, capsys):
    gt = (DATA / "wider" / "wider_face_split" / "wider_face_val_bbx_gt.txt").read_text()
    gt = gt.replace("10 8 20 16 1 0 0 0 0 0", "10 8 -2 16 1 0 0 0 0 0")
    root = _wider_folder(tmp_path, gt)
    pred = tmp_path / "p.jsonl"
    pred.write_text(json.dumps({"source": "0_Parade_marchingband_1_1.jpg", "faces": []}) + "\n")
    assert main(["eval", "dataset", str(root), "--pred", str(pred)]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "dropped 2 face box(es) with zero or negative width or height" in err  # and a w=0 one
    assert "0--Parade/0_Parade_marchingband_1_1" in err and "w=-2" in err
    from facespot.data.wider import WiderFace

    with pytest.warns(UserWarning, match="negative"):
        WiderFace(root, split="val")


def test_empty_annotation_file_is_an_error_not_none_found(tmp_path, capsys):
    root = _wider_folder(tmp_path, "")
    assert main(["eval", "dataset", str(root), "--pred", "/dev/null"]) == 2
    assert "empty annotation file" in capsys.readouterr().err
    assert main(["data", "stats", str(root)]) == 2
    assert "none found" not in capsys.readouterr().out
    from facespot.data.stats import compute_stats, format_stats

    report = format_stats(compute_stats([]))
    assert "none found" not in report and "no images" in report


def test_absurd_boxes_give_no_numpy_warnings(tmp_path, capsys):
    pred = tmp_path / "p.jsonl"
    lines = [
        {"source": "img_a.jpg", "faces": [{"box": [0, 0, 1e30, 1e30], "score": 0.9, "keypoints": [[1e30, 1e30]] * 5}]},
        {"source": "img_b.png", "faces": [{"box": [-1e300, -1e300, 1e300, 1e300], "score": 0.8, "keypoints": None}]},
    ]
    pred.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning would now raise
        assert main(["eval", "dataset", str(DATA / "voc"), "--format", "voc", "--pred", str(pred)]) == 0
    assert "RuntimeWarning" not in capsys.readouterr().err
    from facespot.eval.simple_ap import overlaps

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        o = overlaps(np.array([[0, 0, 1e30, 1e30], [-1e300, -1e300, 1e300, 1e300]]), np.array([[0, 0, 10, 10.0]]))
    assert np.all(np.isfinite(o)) and o.max() < 1e-6


def test_wider_reader_refuses_an_empty_file(tmp_path):
    from facespot.data.wider import read_wider_gt

    p = tmp_path / "gt.txt"
    p.write_text("\n\n")
    with pytest.raises(FacespotError, match="empty annotation file"):
        read_wider_gt(p)
