"""facespot detect over folders and videos (issue 11): SIGTERM leaves a playable video (item 6);
videos inside a folder are processed, a video name for an image output is refused, symlinked
sub-folders are searched (item 12)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from facespot.cli import main

PHOTO = Path(__file__).resolve().parents[1] / "fixtures" / "photos" / "astronaut.jpg"


def _video(path, n=4, size=(96, 64), fourcc="MJPG", fps=5.0):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert w.isOpened(), "this OpenCV cannot write the test video"
    rng = np.random.default_rng(0)
    for _ in range(n):
        w.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    w.release()
    return path


def _frames(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.isOpened() and cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.mark.timeout(180)
def test_sigterm_during_video_save_leaves_a_playable_file(tmp_path):
    src = _video(tmp_path / "in.avi", n=400, size=(320, 240))
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "facespot", "detect", str(src), "--save", str(out), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.stat().st_size > 20_000:  # some frames are written
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be stopped: {proc.communicate()}"
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in stderr, stderr  # 128 + SIGTERM, as shells report it
    assert "facespot: terminated" in stderr
    n = _frames(out)
    assert 0 < n < 400  # playable (the MP4 index was written), holding what was done


@pytest.mark.parametrize("stop, code, word", [("sigterm", 143, "terminated"), ("ctrl-c", 130, "interrupted")])
def test_sigterm_and_ctrl_c_are_told_apart(monkeypatch, capsys, stop, code, word):
    import facespot.cli.detect as detect
    from facespot.errors import Terminated

    def stopped(args):
        raise Terminated() if stop == "sigterm" else KeyboardInterrupt()

    monkeypatch.setattr(detect, "run", stopped)
    assert main(["detect", str(PHOTO)]) == code
    assert capsys.readouterr().err == f"facespot: {word}\n"


def test_videos_inside_a_folder_are_processed(tmp_path, capsys):
    root = tmp_path / "media"
    (root / "clips").mkdir(parents=True)
    (root / "a.jpg").write_bytes(PHOTO.read_bytes())
    _video(root / "clips" / "v.avi", n=3)
    (root / "notes.txt").write_text("x")
    js, saved = tmp_path / "d.jsonl", tmp_path / "saved"
    assert main(["detect", str(root), "--json", str(js), "--save", str(saved), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 file(s) that are neither images nor videos: notes.txt" in out
    rows = [json.loads(x) for x in js.read_text().splitlines()]
    assert [r["source"] for r in rows] == ["a.jpg", "clips/v.avi", "clips/v.avi", "clips/v.avi"]
    assert [r.get("frame") for r in rows] == [None, 0, 1, 2]
    assert cv2.imread(str(saved / "a.jpg")) is not None
    assert _frames(saved / "clips" / "v.avi") == 3  # MJPG in .avi: OpenCV writes the same container


def test_a_folder_with_videos_shows_frames_per_second_while_a_video_is_read(tmp_path, capsys):
    """The folder's bar counts files (an image or a whole video each); a video in it has its own
    bar in frames per second, as a single video has (it showed "img/s" for frames, no total)."""
    root = tmp_path / "media"
    root.mkdir()
    (root / "a.jpg").write_bytes(PHOTO.read_bytes())
    _video(root / "v.avi", n=3)
    assert main(["detect", str(root), "--json", str(tmp_path / "d.jsonl"), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "v.avi" in err and "frame/s" in err
    assert "2/2" in err and "file/s" in err and "img/s" not in err
    assert main(["detect", str(root / "a.jpg"), "--json", str(tmp_path / "e.jsonl"), "--progress"]) == 0
    assert "1/1" in (err := capsys.readouterr().err) and "img/s" in err  # images alone: as before


def test_video_name_for_an_image_output_is_refused(tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert main(["detect", str(PHOTO), "--save", str(out)]) == 2
    assert "an image input needs an image output" in capsys.readouterr().err
    assert not out.exists()
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(PHOTO.read_bytes())
    assert main(["detect", str(folder), "--save", str(tmp_path / "out.mp4")]) == 2
    assert "needs an output folder" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlinked_subfolders_are_searched(tmp_path, capsys):
    real = tmp_path / "elsewhere" / "party"
    real.mkdir(parents=True)
    (real / "b.jpg").write_bytes(PHOTO.read_bytes())
    root = tmp_path / "photos"
    root.mkdir()
    (root / "a.jpg").write_bytes(PHOTO.read_bytes())
    (root / "party").symlink_to(real, target_is_directory=True)
    (root / "party" / "loop").symlink_to(root, target_is_directory=True)  # a link back: noted, not followed
    js = tmp_path / "d.jsonl"
    assert main(["detect", str(root), "--json", str(js), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert [json.loads(x)["source"] for x in js.read_text().splitlines()] == ["a.jpg", "party/b.jpg"]
    assert "2 image(s)" in out and "not followed again" in out
