"""facespot detect / blur / export end to end on a tiny model, images, folders and videos."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import facespot
from facespot.cli import main
from facespot.data.predictions import read_prediction_file, read_wider_predictions

THRESH = "0.2"


def _img(seed=0, h=96, w=128):
    rng = np.random.default_rng(seed)
    im = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    im[20:70, 30:80] = (140, 160, 200)
    return im


def _video(path, n=6, fps=7.0, size=(128, 96), fourcc="MJPG"):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert w.isOpened(), "this OpenCV cannot write the test video"
    for i in range(n):
        w.write(_img(i, size[1], size[0]))
    w.release()
    return path


def _count_frames(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    fps, w, h = cap.get(cv2.CAP_PROP_FPS), cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
    cap.release()
    return n, fps, (int(w), int(h))


def test_detect_image_json_and_save(tiny_weights, tmp_path, capsys):
    src = tmp_path / "photo.png"
    cv2.imwrite(str(src), _img()[:, :, ::-1])
    out, js = tmp_path / "out.jpg", tmp_path / "d.jsonl"
    rc = main(["detect", str(src), "--model", str(tiny_weights), "--threshold", THRESH, "--save", str(out), "--json", str(js)])
    assert rc == 0
    lines = [json.loads(x) for x in js.read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["source"] == "photo.png" and (lines[0]["width"], lines[0]["height"]) == (128, 96)
    expected = facespot.load(tiny_weights, score_threshold=float(THRESH), rgb=True)(_img())
    assert len(lines[0]["faces"]) == len(expected) > 0
    np.testing.assert_allclose(lines[0]["faces"][0]["box"], expected[0].box, atol=0.01)
    assert len(lines[0]["faces"][0]["keypoints"]) == 6
    saved = cv2.imread(str(out))
    assert saved.shape == (96, 128, 3)
    assert f"{len(expected)} face(s)" in capsys.readouterr().out


def test_detect_folder_skips_and_reports(tiny_weights, tmp_path, capsys):
    root = tmp_path / "imgs"
    (root / "0--Parade").mkdir(parents=True)
    (root / "1--Handshaking").mkdir()
    cv2.imwrite(str(root / "0--Parade" / "0_a.jpg"), _img(1))
    cv2.imwrite(str(root / "1--Handshaking" / "1_b.png"), _img(2))
    (root / "readme.txt").write_text("not an image")
    (root / "1--Handshaking" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 30)
    js, wider, saved = tmp_path / "d.jsonl", tmp_path / "wider", tmp_path / "saved"
    rc = main([
        "detect", str(root), "--model", str(tiny_weights), "--threshold", "0.5", "--wider-threshold", "0.1",
        "--json", str(js), "--wider-out", str(wider), "--save", str(saved), "--no-progress",
    ])  # fmt: skip
    assert rc == 0
    report = capsys.readouterr().out
    assert "2 image(s)" in report and "skipped 1 file(s) that are neither images nor videos: readme.txt" in report
    assert "1 input(s) could not be read" in report and "broken.jpg" in report
    rows = [json.loads(x) for x in js.read_text().splitlines()]
    assert [r["source"] for r in rows] == ["0--Parade/0_a.jpg", "1--Handshaking/1_b.png", "1--Handshaking/broken.jpg"]
    assert "error" in rows[2] and all(f["score"] >= 0.5 for r in rows[:2] for f in r["faces"])
    # WIDER layout: <event>/<name>.txt, boxes above the (lower) WIDER threshold, x y w h score
    preds = read_wider_predictions(wider)
    assert sorted(preds.boxes) == ["0--Parade/0_a", "1--Handshaking/1_b"]
    name, boxes = read_prediction_file(wider / "0--Parade" / "0_a.txt")
    assert name == "0_a.jpg"
    ref = facespot.load(tiny_weights, score_threshold=0.1)(root / "0--Parade" / "0_a.jpg")  # same decoded pixels
    assert len(boxes) == len(ref) >= len(rows[0]["faces"])
    np.testing.assert_allclose(boxes[:, :4], [f.box for f in ref], atol=2e-3)
    assert (saved / "0--Parade" / "0_a.jpg").is_file() and (saved / "1--Handshaking" / "1_b.png").is_file()


def test_video_keeps_fps_size_and_frames(tiny_weights, tmp_path):
    src = _video(tmp_path / "clip.avi")
    out, js = tmp_path / "annotated.mp4", tmp_path / "v.jsonl"
    assert main(["detect", str(src), "--model", str(tiny_weights), "--save", str(out), "--json", str(js)]) == 0
    rows = [json.loads(x) for x in js.read_text().splitlines()]
    assert [r["frame"] for r in rows] == list(range(6))
    n, fps, size = _count_frames(out)
    assert (n, size) == (6, (128, 96)) and fps == pytest.approx(7.0, abs=0.01)


def test_truncated_video_stops_cleanly(tiny_weights, tmp_path, capsys):
    src = _video(tmp_path / "clip.avi", n=12)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])  # cut the file mid-stream
    out = tmp_path / "blurred.avi"
    rc = main(["blur", str(src), "--model", str(tiny_weights), "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    n, _, size = _count_frames(out)
    assert 0 < n < 12 and size == (128, 96)
    assert f"{n} frame(s)" in text  # every processed frame is in the (valid) output


def test_missing_camera_and_failed_runs(tiny_weights, tmp_path, capsys):
    assert main(["detect", "9", "--model", str(tiny_weights)]) == 2
    assert "camera 9: cannot open it" in capsys.readouterr().err
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.jpg").write_bytes(b"")
    assert main(["detect", str(only_bad), "--model", str(tiny_weights)]) == 2
    assert "no input could be read" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    assert main(["detect", str(empty), "--model", str(tiny_weights)]) == 2
    assert "no images or videos found" in capsys.readouterr().err
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), _img())
    assert main(["detect", str(img), "--model", str(tiny_weights), "--max-pixels", "1000"]) == 2
    assert "over the limit of 1000" in capsys.readouterr().err
    assert main(["detect", str(img), "--model", "faceboxes"]) == 2
    assert "--untrained" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "clip.avi"), "--model", str(tiny_weights)]) == 2


def test_blur_changes_only_faces(tiny_weights, tmp_path):
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    im = _img(5)
    cv2.imwrite(str(src), im[:, :, ::-1])
    assert main(["blur", str(src), "--out", str(out), "--model", str(tiny_weights), "--threshold", "0.3", "--margin", "0.1",
                 "--max-faces", "2"]) == 0  # fmt: skip
    got = cv2.imread(str(out))[:, :, ::-1]
    faces = facespot.load(tiny_weights, score_threshold=0.3, max_faces=2, rgb=True)(im)
    assert len(faces) == 2
    from facespot.runtime.anonymize import grow_box

    inside = np.zeros(im.shape[:2], bool)
    for f in faces:
        x1, y1, x2, y2 = grow_box(f.box, 0.1, 128, 96) or (0, 0, 0, 0)
        inside[y1:y2, x1:x2] = True
    assert 0.05 < inside.mean() < 0.8
    assert np.array_equal(got[~inside], im[~inside])  # PNG is lossless: outside bit-exact
    assert np.abs(got[inside].astype(int) - im[inside]).mean() > 10  # noise inside is smoothed away


def test_export_quantize_reports_output_cost(tiny_weights, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(tiny_weights), "--onnx", str(out), "--quantize", "dynamic"]) == 0
    text = capsys.readouterr().out
    assert "ONNX Runtime vs PyTorch at 128x128" in text and "int8 vs float outputs" in text
    assert "note: to measure what int8 costs in accuracy" in text and "trained weights" not in text  # these are trained
    q = tmp_path / "m.int8.onnx"
    assert q.is_file() and q.stat().st_size < out.stat().st_size
    det = facespot.load(q, threads=1)  # the int8 file carries the metadata too
    assert det.model_name == "blazeface_front"


def test_detect_json_to_stdout_keeps_stdout_pure(tiny_weights, tmp_path, capsys):
    src = tmp_path / "photo.png"
    cv2.imwrite(str(src), _img()[:, :, ::-1])
    assert main(["detect", str(src), "--model", str(tiny_weights), "--threshold", THRESH, "--json", "-"]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(x) for x in out.splitlines()]  # every stdout line is JSON
    assert len(lines) == 1 and lines[0]["source"] == "photo.png" and lines[0]["faces"]
    assert "detect:" in err and not (tmp_path / "-").exists()
