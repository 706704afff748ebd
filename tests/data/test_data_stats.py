"""Data set statistics and `facespot data stats` through the CLI entry point."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from facespot.cli import main
from facespot.data.records import FaceRecord
from facespot.data.stats import compute_stats, format_stats, size_histogram, size_labels

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "data"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_histogram_buckets() -> None:
    assert size_labels() == ["<10", "10-20", "20-40", "40-80", "80-160", "160-320", ">320"]
    # an edge value falls in the bucket above it
    assert size_histogram(np.array([5, 10, 19.9, 20, 100, 320, 1000])) == [1, 2, 1, 0, 1, 0, 2]


def test_compute_stats_finds_problems(tmp_path: Path) -> None:
    img = FIX / "voc" / "images" / "img_a.jpg"  # 64 x 48
    recs = [
        FaceRecord(img, [[0, 0, 10, 40], [5, 5, 5, 9]], name="a"),  # sqrt(400)=20; degenerate
        FaceRecord(img, [[50, 30, 70, 40]], name="b"),  # x2 = 70 > 64 + 1: outside
        FaceRecord(tmp_path / "gone.jpg", [[1, 1, 4, 4]], name="b"),  # missing + duplicate name
        FaceRecord(img, np.zeros((0, 4)), name="c"),
    ]
    s = compute_stats(recs)
    assert (s.images, s.faces, s.images_without_faces) == (4, 4, 1)
    assert s.faces_per_image == pytest.approx(1.0)
    # sizes: 20, sqrt(200)=14.1, 3
    assert s.size_counts == [1, 1, 1, 0, 0, 0, 0]
    assert s.problem_counts() == {
        "duplicate name": 1, "degenerate box": 1, "box outside image": 1, "missing image": 1,
    }
    assert compute_stats(recs, check_images=False).problem_counts() == {"duplicate name": 1, "degenerate box": 1}
    text = format_stats(s)
    assert "faces per image:   1.00" in text
    assert "missing image: 1" in text and "gone.jpg" in text


def test_cli_stats_on_fixture(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "stats", str(FIX / "wider")]) == 0
    out = capsys.readouterr().out
    assert "(wider)" in out
    assert "images:            3" in out
    assert "faces:             3" in out  # stats shows invalid boxes too
    assert "degenerate box: 1" in out  # ... and reports the w=0 one
    # sizes sqrt(20*16)=17.9 and sqrt(3*2)=2.4 (the degenerate box has none)
    assert "       <10        1" in out and "     10-20        1" in out


def test_cli_stats_reports_missing_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "w"
    shutil.copytree(FIX / "wider", root)
    (root / "images" / "1--Handshaking" / "1_Handshaking_x_3.jpg").unlink()
    assert main(["data", "stats", str(root), "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "missing image: 1" in out and "1_Handshaking_x_3.jpg" in out


def test_cli_stats_reports_truncated_and_empty_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A JPEG cut short keeps a readable header, so a header-only check passed it (and OpenCV
    decodes it to grey); the file is now read whole (not decoded) and reported."""
    root = tmp_path / "w"
    shutil.copytree(FIX / "wider", root)
    cut = root / "images" / "1--Handshaking" / "1_Handshaking_x_3.jpg"
    cut.write_bytes(cut.read_bytes()[:-16])  # its scan cut short: header and start of data kept
    empty = next(p for p in (root / "images").rglob("*.jpg") if p != cut)
    empty.write_bytes(b"")
    assert main(["data", "stats", str(root), "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "unreadable image: 2" in out
    assert "1_Handshaking_x_3.jpg: truncated JPEG (the end-of-image marker is missing)" in out
    assert f"{empty.name}: image is empty (0 bytes)" in out


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "stats", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("facespot: error: ") and "accepted layouts" in err
    bad = tmp_path / "wider_face_val_bbx_gt.txt"
    bad.write_text("a/b.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n")
    assert main(["data", "stats", str(bad), "--format", "wider"]) == 2
    assert "wider_face_val_bbx_gt.txt:3: file ends inside" in capsys.readouterr().err


def test_cli_stats_real_voc(capsys: pytest.CaptureFixture[str]) -> None:
    root = SHARED / "facemask-voc"
    if not root.is_dir():
        pytest.skip("shared face-mask VOC data not present")
    assert main(["data", "stats", str(root)]) == 0
    out = capsys.readouterr().out
    assert "images:            853" in out and "faces:             4072" in out
