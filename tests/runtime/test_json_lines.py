"""``facespot detect --json FILE`` (issue 20, items 7 and 10): one run writes a file at a time,
a local run resumes as the Ray engine does, and a resume with other settings is refused."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from facespot.cli import main
from facespot.errors import FacespotError
from facespot.runtime.json_lines import open_json_lines, settings_path

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
NAMES = ("astronaut", "cameraman", "grace_hopper", "rocket")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """12 photos in a folder and a sub-folder, and a truncated JPEG."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for name in NAMES:
        img = cv2.imread(str(PHOTOS / f"{name}.jpg"))
        cv2.imwrite(str(root / f"{name}.jpg"), img)
        cv2.imwrite(str(root / "sub" / f"{name}_flip.jpg"), img[:, ::-1])
        cv2.imwrite(str(root / f"{name}_small.png"), cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    (root / "broken.jpg").write_bytes((PHOTOS / "astronaut.jpg").read_bytes()[:3000])
    return root


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_a_second_run_on_the_same_json_is_refused_and_the_first_stays_whole(tmp_path, capsys):
    """Two runs given one --json used to interleave their lines and both exit 0."""
    folder = tmp_path / "many"
    folder.mkdir()
    tiny = cv2.resize(cv2.imread(str(PHOTOS / "astronaut.jpg")), (64, 64), interpolation=cv2.INTER_AREA)
    for i in range(60):
        cv2.imwrite(str(folder / f"{i:03d}.png"), tiny)
    out = tmp_path / "faces.jsonl"
    cmd = [sys.executable, "-m", "facespot", "detect", str(folder), "--json", str(out), "--threads", "1"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out.is_file() and out.read_text().count("\n") >= 2):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)  # held mid-run: the second run surely meets it
        assert main(["detect", str(folder), "--json", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"facespot: error: --json {out}: another facespot run is writing this file") and err.count("\n") == 1
    finally:
        first.send_signal(signal.SIGCONT)
        stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    rows = _lines(out)  # every line whole JSON, the first run's alone, in order
    assert [r["source"] for r in rows] == [f"{i:03d}.png" for i in range(60)]
    assert json.loads(settings_path(out).read_text())["settings"]["threshold"] == 0.5


def test_the_lock_goes_with_the_writer(tmp_path):
    out = tmp_path / "f.jsonl"
    f, done = open_json_lines(out, {"model": "default"})
    assert done == set()
    with pytest.raises(FacespotError, match="another facespot run is writing this file"):
        open_json_lines(out, {"model": "default"})
    f.close()
    g, _ = open_json_lines(out, {"model": "default"})
    g.close()


def test_local_resume_continues_a_stopped_run(photos, tmp_path, capsys):
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    assert main(["detect", str(photos), "--json", str(full)]) == 0
    lines = full.read_text().splitlines(keepends=True)
    assert len(lines) == 13 and sum('"error"' in x for x in lines) == 1
    kept = [x for x in lines[:7] if '"error"' not in x]
    # a run stopped mid-line, after an error line; its settings were recorded when it started
    part.write_text("".join(kept) + next(x for x in lines if '"error"' in x) + lines[9][:30])
    shutil.copy(settings_path(full), settings_path(part))
    capsys.readouterr()
    assert main(["detect", str(photos), "--json", str(part), "--resume"]) == 0
    out = capsys.readouterr().out
    assert f"resumed: {len(kept)} image(s) already in {part} were skipped" in out
    assert f"detect: {12 - len(kept)} image(s)" in out and "broken.jpg" in out  # only the rest ran, broken.jpg again
    got = part.read_text().splitlines(keepends=True)
    assert got[: len(kept)] == kept and sorted(got) == sorted(lines)  # every source once, none lost, none twice
    assert main(["detect", str(photos), "--json", str(part), "--resume"]) == 0
    assert "nothing to do" not in capsys.readouterr().out  # broken.jpg is never done: tried each time
    one = tmp_path / "one.jsonl"
    assert main(["detect", str(PHOTOS / "astronaut.jpg"), "--json", str(one)]) == 0
    assert main(["detect", str(PHOTOS / "astronaut.jpg"), "--json", str(one), "--resume"]) == 0
    assert "nothing to do: all 1 image(s) are already in" in capsys.readouterr().out
    assert len(_lines(one)) == 1


def test_resume_with_other_settings_is_refused(photos, tmp_path, capsys):
    out = tmp_path / "f.jsonl"
    assert main(["detect", str(photos / "astronaut.jpg"), "--json", str(out), "--threshold", "0.5"]) == 0
    before = out.read_bytes()
    for extra, words in ((["--threshold", "0.3"], "--threshold 0.5 (this run: 0.3)"),
                         (["--model", "faceboxes-wider"], "--model default (this run: faceboxes-wider)"),
                         (["--multiscale"], "--multiscale False (this run: True)")):  # fmt: skip
        capsys.readouterr()
        assert main(["detect", str(photos), "--json", str(out), "--resume", *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--resume {out}: it was written with" in err and words in err, err
        assert out.read_bytes() == before  # untouched
    settings_path(out).unlink()  # written by something that did not record its settings
    assert main(["detect", str(photos), "--json", str(out), "--resume"]) == 2
    assert "the settings it was written with are unknown" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_resume_needs_a_json_file_and_images(photos, tmp_path, capsys):
    for argv in (["detect", str(photos), "--resume"], ["detect", str(photos), "--json", "-", "--resume"]):
        assert main(argv) == 2
        assert "--resume continues a --json FILE" in capsys.readouterr().err


@pytest.mark.skipif(os.name != "posix", reason="POSIX advisory locks")
def test_resume_refuses_a_file_that_is_not_detect_output(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text('{"hello": 1}\nplain text\n')
    with pytest.raises(FacespotError, match="not a `facespot detect --json` file"):
        open_json_lines(path, {}, resume=True)
    assert path.read_text() == '{"hello": 1}\nplain text\n'  # untouched


def test_resume_keeps_complete_records_only(tmp_path):
    path = tmp_path / "faces.jsonl"
    good = [{"source": f"a/{i}.jpg", "width": 4, "height": 3, "faces": []} for i in range(3)]
    lines = [json.dumps(good[0]), json.dumps({"source": "bad.jpg", "error": "bad.jpg: truncated JPEG"}), json.dumps(good[1]),
             json.dumps(good[0]), json.dumps(good[2])[:20]]  # fmt: skip
    path.write_text("\n".join(lines))  # the last line was cut off mid-write
    settings = {"model": "default", "threshold": 0.5}
    settings_path(path).write_text(json.dumps({"settings": settings}))
    f, done = open_json_lines(path, settings, resume=True)
    f.write("next\n")
    f.close()
    assert done == {"a/0.jpg", "a/1.jpg"}  # the error is retried, the half line dropped
    assert path.read_text() == json.dumps(good[0]) + "\n" + json.dumps(good[1]) + "\n" + "next\n"
    f, done = open_json_lines(tmp_path / "missing.jsonl", settings, resume=True)
    f.close()
    assert done == set()
