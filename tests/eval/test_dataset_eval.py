"""``facespot.eval.dataset_eval`` and ``facespot eval dataset``: hand-computed AP and NME."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facespot.cli import main
from facespot.data.caltech import box_from_landmarks
from facespot.data.records import FaceRecord
from facespot.errors import FacespotError
from facespot.eval.dataset_eval import (
    ImagePredictions,
    evaluate_dataset,
    format_table,
    parse_keypoint_map,
    predict_records,
    read_prediction_jsonl,
)
from facespot.runtime.detector import Face
from facespot.runtime.pipeline import DetectOutputs
from facespot.runtime.sources import Frame


def _rec(name: str, boxes, landmarks=None) -> FaceRecord:
    return FaceRecord(Path(f"/nowhere/{name}.jpg"), np.asarray(boxes, np.float32), landmarks, name=name)


def _face_points(x: float, y: float) -> np.ndarray:
    """Caltech-order points (left eye, right eye, nose, mouth) of a face at (x, y); eyes 6 px apart."""
    return np.array([[x + 2, y + 3], [x + 8, y + 3], [x + 5, y + 5], [x + 5, y + 8]], np.float32)


def _six(points4: np.ndarray) -> np.ndarray:
    """Pad 4 points with two 'ear' keypoints, as a 6-keypoint BlazeFace gives them."""
    return np.concatenate([points4, [[-100.0, -100.0], [-200.0, -200.0]]]).astype(np.float32)


# ---------------------------------------------------------------------- AP


def test_ap_with_top_ranked_false_positive_is_hand_computed():
    # GT: image a has faces g1, g2; image b has g3. Ranked detections: FP .9 | g1 .8 | g3 .7 | FP .1;
    # g2 is missed. Recall/precision: 1/3 @ 1/2, 2/3 @ 2/3, 2/3 @ 2/4. Precision envelope is 2/3 up
    # to recall 2/3: AP = 2/3 * 2/3 = 4/9.
    recs = [_rec("a", [[0, 0, 10, 10], [20, 20, 30, 30]]), _rec("b", [[0, 0, 10, 10]])]
    preds = {
        "a": ImagePredictions([[50, 50, 60, 60], [0, 0, 10, 10]], [0.9, 0.8]),
        "b": ImagePredictions([[1, 0, 10, 10], [40, 40, 45, 45]], [0.7, 0.1]),
        "not_evaluated": ImagePredictions([[0, 0, 1, 1]], [1.0]),
    }
    r = evaluate_dataset(recs, preds, label="tiny")
    assert r.ap == pytest.approx(4 / 9, abs=1e-9)
    assert (r.num_images, r.num_faces, r.num_detections) == (2, 3, 4)
    assert r.images_without_predictions == 0 and r.landmarks is None
    assert r.min_score == pytest.approx(0.1)
    d = r.to_dict()
    assert d["ap"] == pytest.approx(4 / 9) and d["pr_curve"]["precision"][50] == pytest.approx(2 / 3, abs=1e-5)
    assert "0.4444@0.5" in format_table([r])


def test_image_without_predictions_counts_as_misses():
    recs = [_rec("a", [[0, 0, 10, 10]]), _rec("b", [[0, 0, 10, 10]])]
    r = evaluate_dataset(recs, {"a": ImagePredictions([[0, 0, 10, 10]], [0.9])})
    assert r.ap == pytest.approx(0.5) and r.images_without_predictions == 1


# ---------------------------------------------------------------------- NME


def _nme_case():
    pa1, pa2, pb = _face_points(0, 0), _face_points(40, 0), _face_points(0, 0)
    b_a = box_from_landmarks(np.stack([pa1, pa2]))
    b_b = box_from_landmarks(pb[None])
    recs = [_rec("a", b_a, np.stack([pa1, pa2])), _rec("b", b_b, pb[None])]
    iod = 6.0
    k1 = pa1 + [0.05 * iod, 0]  # every point off by 0.05 IOD          -> NME 0.05
    k2 = pa2 + [0, 0.2 * iod]  # every point off by 0.2 IOD             -> NME 0.2
    k3 = pb.copy()
    k3[2] += [0.06 * iod, 0.08 * iod]  # nose alone off by 0.1 IOD      -> NME 0.1 / 4 = 0.025
    preds = {
        "a": ImagePredictions(b_a, [0.9, 0.8], np.stack([_six(k1), _six(k2)])),
        # a far-away confident box (no match) and the matching one at score 0.3
        "b": ImagePredictions([[100, 100, 110, 110], b_b[0]], [0.95, 0.3], np.stack([_six(pb + 50), _six(k3)])),
    }
    return recs, preds


def test_nme_mean_median_and_fraction_by_hand():
    recs, preds = _nme_case()
    lm = evaluate_dataset(recs, preds, landmark_threshold=0.2).landmarks
    assert lm.mean == pytest.approx((0.05 + 0.2 + 0.025) / 3, abs=1e-5)
    assert lm.median == pytest.approx(0.05, abs=1e-5)
    assert lm.fraction_below_0_1 == pytest.approx(2 / 3)
    assert (lm.faces_measured, lm.faces_with_landmarks) == (3, 3)
    assert lm.keypoint_map == [0, 1, 2, 3]


def test_nme_skips_detections_under_the_landmark_threshold():
    recs, preds = _nme_case()
    lm = evaluate_dataset(recs, preds, landmark_threshold=0.5).landmarks
    assert (lm.faces_measured, lm.faces_with_landmarks) == (2, 3)
    assert lm.mean == pytest.approx(0.125, abs=1e-5)


def test_keypoint_map_swaps_eyes():
    pts = _face_points(0, 0)
    rec = _rec("a", box_from_landmarks(pts[None]), pts[None])
    swapped = pts[[1, 0, 2, 3]] + [0.3, 0]  # eyes in the other order, all 0.05 IOD off
    preds = {"a": ImagePredictions(rec.boxes, [0.9], _six(swapped)[None])}
    right = evaluate_dataset([rec], preds, keypoint_map=parse_keypoint_map("1,0,2,3")).landmarks
    wrong = evaluate_dataset([rec], preds).landmarks
    assert right.mean == pytest.approx(0.05, abs=1e-5)
    # identity pairs each eye with the other: |6 - 0.3| and |6 + 0.3| px, nose/mouth 0.3 px -> 12.6/4/6
    assert wrong.mean == pytest.approx(12.6 / 24, abs=1e-5)
    assert parse_keypoint_map("mediapipe") == (0, 1, 2, 3) and parse_keypoint_map("identity") is None
    with pytest.raises(FacespotError, match="needs 8 predicted keypoints"):
        evaluate_dataset([rec], preds, keypoint_map=(0, 1, 2, 7))
    with pytest.raises(FacespotError, match="keypoint map 'eyes'"):
        parse_keypoint_map("eyes")


def test_predict_records_runs_a_detector_and_keeps_keypoints():
    pts = _face_points(0, 0)
    rec = _rec("a", box_from_landmarks(pts[None]), pts[None])
    seen = []

    def detector(path):
        seen.append(path)
        if path.stem == "empty":
            return []
        return [Face(tuple(float(v) for v in rec.boxes[0]), 0.9, _six(pts + [0.3, 0]))]

    preds = predict_records(detector, [rec, _rec("empty", np.zeros((0, 4)))], progress=False)
    assert seen == [rec.image_path, Path("/nowhere/empty.jpg")]
    assert len(preds["empty"].boxes) == 0 and preds["a"].keypoints.shape == (1, 6, 2)
    r = evaluate_dataset([rec], preds)
    assert r.ap == pytest.approx(1.0) and r.landmarks.mean == pytest.approx(0.05, abs=1e-5)


# ---------------------------------------------------------------------- CLI + JSONL


@pytest.fixture()
def caltech_dir(tmp_path):
    """A 2-image Caltech folder (no pixels needed with --pred)."""
    d = tmp_path / "caltech"
    (d / "images").mkdir(parents=True)
    lines = []
    for name, (x, y) in (("pic1.jpg", (10, 10)), ("pic1.jpg", (60, 10)), ("pic2.jpg", (10, 10))):
        lines.append(name + " " + " ".join(f"{v:g}" for v in _face_points(x, y).ravel()))
    (d / "WebFaces_GroundThruth.txt").write_text("\n".join(lines) + "\n")
    return d


def _write_detect_json(path: Path, items) -> None:
    """Lines written by the real ``facespot detect --json`` writer (DetectOutputs + Face.to_dict)."""
    with open(path, "w", encoding="utf-8") as f:
        out = DetectOutputs(f, None, False, 0.0, 0.0, "folder")
        for i, (name, faces) in enumerate(items):
            out(Frame(np.zeros((120, 160, 3), np.uint8), name, i, Path(name)), faces)


def _faces_for(points_list, scores, offset=(0.3, 0.0)):
    faces = []
    for pts, s in zip(points_list, scores):
        box = box_from_landmarks(pts[None])[0]
        faces.append(Face(tuple(float(v) for v in box), s, _six(pts + np.asarray(offset, np.float32))))
    return faces


def test_cli_jsonl_round_trip(caltech_dir, tmp_path, capsys):
    pred = tmp_path / "pred.jsonl"
    # pic1: both faces found (0.05 IOD off); pic2: a false positive outranks its face
    fp = Face((100.0, 80.0, 120.0, 100.0), 0.99, _six(_face_points(100, 80)))
    _write_detect_json(pred, [
        ("images/pic1.jpg", _faces_for([_face_points(10, 10), _face_points(60, 10)], [0.9, 0.8])),
        ("images/pic2.jpg", [fp] + _faces_for([_face_points(10, 10)], [0.7])),
    ])  # fmt: skip
    out_json = tmp_path / "r.json"
    rc = main(["eval", "dataset", str(caltech_dir), "--format", "caltech", "--pred", str(pred), "--json", str(out_json)])
    out = capsys.readouterr().out
    assert rc == 0
    # ranked: FP .99 | TP .9 | TP .8 | TP .7 -> R/P 1/3 2/3, 2/3 2/3... envelope 3/4 -> AP 3/4
    data = json.loads(out_json.read_text())
    assert data["ap"] == pytest.approx(0.75, abs=1e-9)
    assert (data["num_images"], data["num_faces"], data["num_detections"]) == (2, 3, 4)
    assert data["landmarks"]["mean"] == pytest.approx(0.05, abs=1e-3)
    assert data["landmarks"]["fraction_below_0_1"] == 1.0 and data["landmarks"]["faces_measured"] == 3
    assert "0.7500@0.5" in out

    include = tmp_path / "holdout.txt"
    include.write_text("# hold-out\npic2\nnot_there\n")
    rc = main(["eval", "dataset", str(caltech_dir), "--format", "caltech", "--include", str(include),
               "--pred", str(pred), "--json", str(out_json)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0 and "1 image(s) of" in err and "not_there" in err
    data = json.loads(out_json.read_text())
    # pic2 alone: FP .99 then TP .7 -> R/P 1/1 @ 1/2 -> AP 0.5
    assert data["num_images"] == 1 and data["ap"] == pytest.approx(0.5)


def _run_bad(argv, capsys) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    return err


def test_cli_bad_inputs_exit_2(caltech_dir, tmp_path, capsys):
    base = ["eval", "dataset", str(caltech_dir)]
    pred = tmp_path / "p.jsonl"
    pred.write_text(json.dumps({"source": "pic1.jpg", "width": 1, "height": 1, "faces": []}) + "\n")

    assert "unknown data format 'pascal'" in _run_bad(base + ["--format", "pascal", "--pred", str(pred)], capsys)

    inc = tmp_path / "inc.txt"
    inc.write_text("# nothing of ours\nother1\nother2\n")
    err = _run_bad(base + ["--format", "caltech", "--include", str(inc), "--pred", str(pred)], capsys)
    assert "none of its 2 image names" in err and str(inc) in err

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"source": "pic1.jpg", "faces": []}) + "\n" + '{"source": "pic2.jpg", "faces": [\n')
    err = _run_bad(base + ["--format", "caltech", "--pred", str(bad)], capsys)
    assert f"{bad}:2: not valid JSON" in err

    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({"source": "pic1.jpg", "faces": []}) + "\n" + json.dumps({"source": "images/zzz.jpg", "faces": []}) + "\n")
    err = _run_bad(base + ["--format", "caltech", "--pred", str(unknown)], capsys)
    assert f"{unknown}:2: image 'images/zzz.jpg' is not in the data set" in err

    badbox = tmp_path / "badbox.jsonl"
    badbox.write_text(json.dumps({"source": "pic1.jpg", "faces": [{"box": [1, 2, 3], "score": 0.5}]}) + "\n")
    assert f"{badbox}:1: face 0 box must be a list of 4 numbers" in _run_bad(base + ["--format", "caltech", "--pred", str(badbox)], capsys)

    dup = tmp_path / "dup.jsonl"
    dup.write_text(json.dumps({"source": "pic1.jpg", "faces": []}) + "\n" + json.dumps({"source": "images/pic1.jpg", "faces": []}) + "\n")
    assert "already has predictions on line 1" in _run_bad(base + ["--format", "caltech", "--pred", str(dup)], capsys)

    assert "prediction file not found" in _run_bad(base + ["--format", "caltech", "--pred", str(tmp_path / "none.jsonl")], capsys)
    assert "weights file not found" in _run_bad(base + ["--format", "caltech", "--model", str(tmp_path / "w.safetensors")], capsys)
    assert "keypoint map 'x,y'" in _run_bad(base + ["--format", "caltech", "--pred", str(pred), "--keypoint-map", "x,y"], capsys)


def test_read_prediction_jsonl_failed_images_and_names(caltech_dir):
    from facespot.data.formats import open_records

    recs = open_records(caltech_dir, "caltech")
    p = caltech_dir / "p.jsonl"
    p.write_text(json.dumps({"source": "sub/images/pic1.png", "faces": []}) + "\n\n" + json.dumps({"source": "pic2.jpg", "error": "cannot decode"}) + "\n")
    read = read_prediction_jsonl(p, recs)
    assert set(read.predictions) == {"pic1"} and read.failed == ["pic2"]


def test_five_point_predictions_on_four_point_data_use_the_mouth_centre():
    # RetinaFace order: eyes, nose, mouth corners. Caltech's mouth point is the corners' mean.
    pts = _face_points(0, 0)
    rec = _rec("a", box_from_landmarks(pts[None]), pts[None])
    corners = [[pts[3, 0] - 2, pts[3, 1]], [pts[3, 0] + 2, pts[3, 1]]]  # 4 px apart around the mouth point
    five = np.concatenate([pts[:3], corners]).astype(np.float32)
    preds = {"a": ImagePredictions(rec.boxes, [0.9], five[None])}
    auto = evaluate_dataset([rec], preds).landmarks  # identity on a 5-point model + 4-point data -> 5point
    assert auto.mean == pytest.approx(0.0, abs=1e-6) and auto.keypoint_map == [0, 1, 2, [3, 4]]
    explicit = evaluate_dataset([rec], preds, keypoint_map=parse_keypoint_map("0,1,2,3")).landmarks
    assert explicit.mean == pytest.approx(2 / 6 / 4, abs=1e-6)  # one corner: 2 px off on 1 of 4 points, IOD 6
    assert parse_keypoint_map("0,1,2,3+4") == parse_keypoint_map("5point") == (0, 1, 2, (3, 4))
    with pytest.raises(FacespotError, match="needs 6 predicted keypoints"):
        evaluate_dataset([rec], preds, keypoint_map=parse_keypoint_map("0,1,2,4+5"))
    with pytest.raises(FacespotError, match="keypoint map"):
        parse_keypoint_map("0,1,2,3+x")
