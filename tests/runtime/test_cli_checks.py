"""Smaller CLI promises (issue 20, item 12): options and output names are checked, blur keeps
what the file held, summaries count what they say, long images show progress."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

import facespot
from facespot.cli import main
from facespot.errors import FacespotError
from facespot.images import read_image

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "tests" / "fixtures" / "photos"
FACE = (slice(90, 160), slice(195, 255))  # inside the astronaut's face


def _one_line_error(capsys, argv, words):
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("facespot: error:") and err.count("\n") == 1 and words in err, err


def test_save_names_with_an_unknown_extension_are_refused(tmp_path, capsys):
    photo = PHOTOS / "astronaut.jpg"
    for name in ("out.gif", "out.xyz"):
        _one_line_error(capsys, ["detect", photo, "--save", tmp_path / name], "is not an image format facespot writes")
        _one_line_error(capsys, ["blur", photo, "--out", tmp_path / name], "is not an image format facespot writes")
        assert not (tmp_path / name).exists()  # no folder of that name
    dotted = tmp_path / "annotated.v2"
    dotted.mkdir()  # an existing folder is a folder, whatever its name
    assert main(["detect", str(photo), "--save", str(dotted)]) == 0
    assert (dotted / "astronaut.jpg").is_file()


def test_negative_sizes_and_pixel_limits_are_refused(tmp_path, capsys):
    photo = PHOTOS / "astronaut.jpg"
    for verb in (["detect", photo], ["blur", photo, "--out", tmp_path / "b.jpg"]):
        _one_line_error(capsys, [*verb, "--min-side", "-1"], "--min-side must be 0 (never upscale) or a long side in pixels, got -1")
        _one_line_error(capsys, [*verb, "--max-pixels", "-5"], "--max-pixels must be at least 1, got -5")
    for bad, words in (({"min_side": -1}, "min_side must be at least 1"), ({"max_pixels": -5}, "max_pixels must be at least 1")):
        with pytest.raises(FacespotError, match=words):
            facespot.load(**bad)
    assert not (tmp_path / "b.jpg").exists()


@pytest.mark.parametrize("name, make, channels, dtype", [
    ("rgba.png", lambda bgr: np.dstack([bgr, np.full(bgr.shape[:2], 200, np.uint8)]), 4, np.uint8),
    ("gray.png", lambda bgr: cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 1, np.uint8),
    ("gray.jpg", lambda bgr: cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 1, np.uint8),
    ("deep.png", lambda bgr: bgr.astype(np.uint16) * 257, 3, np.uint16),
    ("deep.tiff", lambda bgr: bgr.astype(np.uint16) * 257, 3, np.uint16),
    ("rgba.webp", lambda bgr: np.dstack([bgr, np.full(bgr.shape[:2], 200, np.uint8)]), 4, np.uint8),
])  # fmt: skip
def test_blur_keeps_alpha_gray_and_16_bits(tmp_path, name, make, channels, dtype):
    """As the server does: the blurred file has the input's channels and depth, not 8-bit RGB."""
    src = make(cv2.imread(str(PHOTOS / "astronaut.jpg")))
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if name.endswith(".webp") else []
    assert cv2.imwrite(str(tmp_path / name), src, params)
    src = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)  # what the file holds (JPEG: after its loss)
    out = tmp_path / "out" / name
    # one threshold: the face alone, whatever low-score boxes the measured blur operating point also covers
    assert main(["blur", str(tmp_path / name), "--out", str(out), "--threshold", "0.5"]) == 0
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.dtype == dtype and (got.shape[2] if got.ndim == 3 else 1) == channels and got.shape[:2] == src.shape[:2]
    scale = 257 if dtype == np.uint16 else 1
    assert np.abs(got[FACE].astype(float) - src[FACE]).mean() > 8 * scale  # the face is hidden
    tol = 3 * scale if name.endswith((".jpg", ".webp")) else 0
    assert np.abs(got[300:].astype(float) - src[300:]).max() <= tol + (4 if name.endswith(".jpg") else 0)  # the rest kept
    if channels == 4:
        assert (got[:, :, 3] == 200).all()  # alpha kept


def test_folder_summary_counts_video_frames_apart(tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(PHOTOS / "astronaut.jpg", folder / "a.jpg")
    writer = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (128, 96))
    assert writer.isOpened()
    for i in range(12):
        writer.write(np.full((96, 128, 3), 20 * i, np.uint8))
    writer.release()
    assert main(["detect", str(folder), "--json", str(tmp_path / "f.jsonl")]) == 0
    assert "detect: 1 image(s), 12 video frame(s), 1 face(s)" in capsys.readouterr().out


def test_export_quantize_note_of_untrained_weights(tmp_path, capsys):
    assert main(["export", "blazeface_front", "--untrained", "--onnx", str(tmp_path / "b.onnx"), "--quantize", "dynamic"]) == 0
    out = capsys.readouterr().out
    assert "these weights are untrained (--untrained), so these numbers say nothing about accuracy" in out


def test_a_huge_multiscale_image_shows_its_tiles_progress(tmp_path, capsys):
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.full((2400, 3600, 3), 90, np.uint8))
    assert main(["detect", str(big), "--multiscale", "--progress", "--json", str(tmp_path / "f.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "tiles:" in err and ("tile/s" in err or "s/tile" in err), err[-500:]
    assert main(["detect", str(big), "--multiscale", "--no-progress", "--json", str(tmp_path / "g.jsonl")]) == 0
    assert "tiles" not in capsys.readouterr().err


def test_the_readme_first_command_leaves_git_nothing_to_add():
    readme = (ROOT / "README.md").read_text()
    first = next(line for line in readme.splitlines() if "facespot detect" in line and "--save" in line)
    saved = first.split("--save", 1)[1].split()[0]
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    assert subprocess.run(["git", "check-ignore", "-q", saved], cwd=ROOT).returncode == 0, f"{saved} is not git-ignored"
