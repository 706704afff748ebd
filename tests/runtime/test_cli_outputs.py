"""Every command refuses to overwrite its inputs and reports unwritable outputs in one line
(issue 11, items 1 and 5), before any model loads."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from facespot.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PHOTO = FIXTURES / "photos" / "astronaut.jpg"


def _photo(tmp_path, name="x.jpg"):
    p = tmp_path / name
    shutil.copy(PHOTO, p)
    return p


def _video(path, n=3, size=(64, 48)):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, size)
    assert w.isOpened()
    for i in range(n):
        w.write(np.full((size[1], size[0], 3), 40 * i, np.uint8))
    w.release()
    return path


def _refused(capsys, argv, *inputs):
    before = [p.read_bytes() for p in inputs]
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("facespot: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    assert [p.read_bytes() for p in inputs] == before  # the inputs are untouched
    return err


def test_detect_outputs_never_replace_inputs(tmp_path, capsys):
    photo = _photo(tmp_path)
    assert "this is the input" in _refused(capsys, ["detect", photo, "--json", photo], photo)
    assert "this is the input" in _refused(capsys, ["detect", photo, "--save", photo], photo)
    clip = _video(tmp_path / "clip.avi")
    assert "this is the input" in _refused(capsys, ["detect", clip, "--json", clip], clip)
    folder = tmp_path / "photos"
    folder.mkdir()
    inner = _photo(folder, "a.jpg")
    assert "this is the input" in _refused(capsys, ["detect", folder, "--json", inner], inner)
    assert "this is the input" in _refused(capsys, ["detect", folder, "--save", folder], inner)
    link = tmp_path / "link.jpg"
    link.symlink_to(photo)
    assert "this is the input" in _refused(capsys, ["detect", photo, "--json", link], photo)


def test_two_outputs_of_one_run_never_share_a_file(tmp_path, capsys):
    photo = _photo(tmp_path)
    out = tmp_path / "out.jpg"
    err = _refused(capsys, ["detect", photo, "--save", out, "--json", out], photo)
    assert "the same file as --json" in err and not out.exists()
    folder = tmp_path / "clips"
    folder.mkdir()
    webm, mp4 = folder / "clip.webm", _video(folder / "clip.mp4")
    webm.write_bytes(b"not decoded: refused before any frame is read")
    err = _refused(capsys, ["detect", folder, "--save", tmp_path / "saved"], webm, mp4)
    assert "clip.mp4 and" in err and "clip.webm would both be saved as" in err and "rename one" in err
    assert not (tmp_path / "saved").exists()


def test_blur_and_wider_out_never_replace_inputs(tmp_path, capsys):
    photo = _photo(tmp_path)
    assert "this is the input" in _refused(capsys, ["blur", photo, "--out", photo], photo)
    folder = tmp_path / "photos"
    (folder / "0--Parade").mkdir(parents=True)
    inner = _photo(folder / "0--Parade", "a.jpg")
    err = _refused(capsys, ["detect", folder, "--wider-out", inner], inner)
    assert "--wider-out" in err


def test_export_train_eval_never_replace_inputs(tmp_path, capsys):
    from facespot.runtime.packaged import packaged_files

    onnx = packaged_files("default")[-1]
    assert onnx.suffix == ".onnx"
    assert "this is the input" in _refused(capsys, ["export", "default", "--onnx", onnx], onnx)
    recipe = tmp_path / "config.yaml"
    shutil.copy(FIXTURES / "train" / "tiny.yaml", recipe)
    assert "this is the input" in _refused(capsys, ["train", recipe, "--out", tmp_path], recipe)
    gt = FIXTURES / "eval" / "wider_gt"
    mat = tmp_path / "gt" / "wider_face_val.mat"
    shutil.copytree(gt, tmp_path / "gt")
    preds = FIXTURES / "eval" / "wider_pred"
    err = _refused(capsys, ["eval", "wider", "--pred", preds, "--gt", tmp_path / "gt", "--json", mat], mat)
    assert "--json" in err and "input" in err
    old_plot = tmp_path / "gt" / "pr.png"  # an existing file inside an input folder
    old_plot.write_bytes(b"png")
    err = _refused(capsys, ["eval", "wider", "--pred", preds, "--gt", tmp_path / "gt", "--plot", old_plot], old_plot)
    assert "--plot" in err and "input folder" in err


def test_unwritable_outputs_are_one_line_errors(tmp_path, capsys):
    photo = _photo(tmp_path)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    preds, gt = FIXTURES / "eval" / "wider_pred", FIXTURES / "eval" / "wider_gt"
    cases = [
        ["detect", photo, "--json", folder],  # onto a folder
        ["detect", photo, "--json", a_file / "x.jsonl"],  # a file where a folder should be
        ["detect", photo, "--json", "/proc/facespot-test.jsonl"],  # cannot create here
        ["detect", photo, "--wider-out", a_file / "preds"],
        ["detect", photo, "--wider-out", a_file],
        ["eval", "wider", "--pred", preds, "--gt", gt, "--plot", a_file / "pr.png"],
        ["eval", "wider", "--pred", preds, "--gt", gt, "--plot", tmp_path / "pr.nope"],
        ["eval", "wider", "--pred", preds, "--gt", gt, "--json", folder],
        ["export", "default", "--onnx", a_file / "m.onnx"],
        ["export", "default", "--onnx", "/proc/facespot-test/m.onnx"],
        ["train", FIXTURES / "train" / "tiny.yaml", "--out", a_file],
        ["train", FIXTURES / "train" / "tiny.yaml", "--out", "/proc/facespot-test"],
    ]
    for argv in cases:
        _refused(capsys, argv, photo, a_file)
    assert not list(folder.iterdir())


def test_read_only_folder(tmp_path, read_only_folder, permissions_bind):
    photo = _photo(tmp_path)
    for argv in (["detect", photo, "--json", read_only_folder / "x.jsonl"],
                 ["detect", photo, "--save", read_only_folder / "x.jpg"],
                 ["blur", photo, "--out", read_only_folder / "sub" / "x.jpg"]):  # fmt: skip
        proc = permissions_bind("-m", "facespot", *argv)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(f"facespot: error: {argv[2]} {argv[3]}: cannot create it"), proc.stderr
        assert proc.stderr.count("\n") == 1 and "Permission denied" in proc.stderr
    assert not list(read_only_folder.iterdir())
