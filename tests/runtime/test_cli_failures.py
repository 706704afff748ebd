"""Bad model files, full disks, devices as outputs and SIGTERM outside detect: one line and a
non-zero exit, and no half-written output left behind (never a traceback)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import facespot
from facespot.cli import main
from facespot.errors import FacespotError

PHOTO = Path(__file__).resolve().parents[1] / "fixtures" / "photos" / "astronaut.jpg"


def _one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("facespot: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def test_an_onnx_file_whose_graph_does_not_fit_its_metadata(tiny_weights, tmp_path, capsys):
    """A BlazeFace graph (fixed 128x128 input) whose metadata names FaceBoxes used to end in
    ONNX Runtime's InvalidArgument traceback at the first image."""
    from facespot.runtime.onnx_meta import add_metadata

    onnx_file = tmp_path / "relabelled.onnx"
    assert main(["export", str(tiny_weights), "--onnx", str(onnx_file)]) == 0
    add_metadata(onnx_file, {"facespot_model": "faceboxes", "config": '{"name": "faceboxes"}'})
    capsys.readouterr()
    assert main(["detect", str(PHOTO), "--model", str(onnx_file)]) == 2
    _one_line_error(capsys, f"{onnx_file}: ONNX Runtime cannot run it", "facespot export")


@pytest.mark.parametrize("bad", ["3 logits per anchor", "no keypoints"])
def test_network_outputs_that_do_not_fit_the_model_are_refused(tiny_weights, bad):
    """Outputs with the right anchor count but the wrong layout were decoded anyway: an
    IndexError deep in decoding, or faces silently missing their keypoints."""
    det = facespot.load(tiny_weights, backend="torch", score_threshold=0.2)
    real = det.backend

    class Wrong:
        name, threads = real.name, real.threads

        def run(self, x):
            deltas, logits, points = real.run(x)
            if bad == "no keypoints":
                return [deltas, logits]
            return [deltas, np.repeat(np.full_like(logits, 5.0)[..., None], 3, axis=2), points]

    det.backend = Wrong()
    img = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    with pytest.raises(FacespotError, match="outputs do not fit the 'blazeface_front' model"):
        det(img)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell the --json file's writes")
def test_a_full_disk_leaves_every_json_line_whole(tmp_path, capsys, monkeypatch):
    """The disk filling up under --json used to end in a traceback (at flush, then again at
    close) and leave a cut-off last line."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(5):
        shutil.copy(PHOTO, folder / f"{i}.jpg")
    out = tmp_path / "faces.jsonl"
    real_write, calls = os.write, []

    def write(fd, data):
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(out.resolve()):
            calls.append(len(data))
            if len(calls) == 3:  # the third line: part of it reaches the disk, then it is full
                real_write(fd, bytes(data[:10]))
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    assert main(["detect", str(folder), "--json", str(out)]) == 2
    _one_line_error(capsys, f"--json {out}: cannot write (No space left on device)", "complete")
    text = out.read_text()
    assert text.endswith("\n") and [json.loads(x)["source"] for x in text.splitlines()] == ["0.jpg", "1.jpg"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("argv", [["models"], ["detect", str(PHOTO), "--json", "-"]])
def test_a_full_standard_output_is_one_line(argv):
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "facespot", *argv], stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=300)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "facespot: error: cannot write the output (No space left on device)"


def test_json_onto_a_device_is_refused_before_the_model_loads(capsys):
    """--json /dev/null used to end in a traceback (it cannot be truncated)."""
    assert main(["detect", str(PHOTO), "--json", "/dev/null"]) == 2
    _one_line_error(capsys, "--json /dev/null: is a device or a pipe, not a regular file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_json_onto_a_named_pipe_is_refused_not_waited_on(tmp_path):
    """Checking that a FIFO is writable opened it, which waits for a reader: the run hung."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "facespot", "detect", str(PHOTO), "--json", str(fifo)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "is a device or a pipe" in done.stderr and "Traceback" not in done.stderr


def test_saved_images_and_wider_files_are_whole_or_absent(tmp_path, monkeypatch):
    """A write that fails part-way (a full disk) left a truncated image or prediction file
    under its final name; --resume and `facespot eval` would then take it as done."""
    from facespot.data.predictions import write_wider_predictions
    from facespot.runtime.sinks import write_image

    def half_then_full(self, data, *args, **kwargs):
        with open(self, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_full)
    monkeypatch.setattr(Path, "write_text", half_then_full)
    out = tmp_path / "saved"
    with pytest.raises(FacespotError, match="cannot write .No space left on device"):
        write_image(out / "face.jpg", np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(FacespotError, match="cannot write .No space left on device"):
        write_wider_predictions(out / "wider", {"0--Parade/a": np.array([[1, 2, 30, 40, 0.9]])})
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == []  # no part file, no temporary file


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_sigterm_during_export_removes_its_temporary_file(tmp_path):
    """Python's default SIGTERM ended `facespot export` at once: no message, and the half-written
    temporary file beside the output stayed. Now it stops as Ctrl-C does: exit 143, one line."""
    script = textwrap.dedent(
        """
        import os, signal, sys
        real_replace = os.replace
        def replace(src, dst):  # the export is written; SIGTERM arrives before it takes its name
            if str(dst).endswith("m.onnx"):
                os.kill(os.getpid(), signal.SIGTERM)
            return real_replace(src, dst)
        os.replace = replace
        from facespot.cli import main
        sys.exit(main(["export", "blazeface_front", "--untrained", "--onnx", sys.argv[1]]))
        """
    )
    out = tmp_path / "out" / "m.onnx"
    done = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 143 and done.stderr.strip().splitlines()[-1] == "facespot: terminated", done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == []


def test_a_json_line_is_written_only_after_its_saved_image(tmp_path, capsys, monkeypatch):
    """``--resume`` counts an image done by its JSON line: a run stopped between writing the line
    and saving the annotated image used to leave that image never saved. Now the line follows it."""
    import facespot.runtime.pipeline as pipeline

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(PHOTO, folder / name)
    real, calls = pipeline.write_image, []

    def stop_at_second(path, image):
        calls.append(Path(path).name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, image)

    monkeypatch.setattr(pipeline, "write_image", stop_at_second)
    out, saved = tmp_path / "faces.jsonl", tmp_path / "saved"
    assert main(["detect", str(folder), "--json", str(out), "--save", str(saved), "--no-progress"]) == 130
    lines = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert [ln["source"] for ln in lines] == ["a.jpg"] and sorted(p.name for p in saved.iterdir()) == ["a.jpg"]
    monkeypatch.setattr(pipeline, "write_image", real)
    assert main(["detect", str(folder), "--json", str(out), "--save", str(saved), "--resume", "--no-progress"]) == 0
    assert sorted(p.name for p in saved.iterdir()) == ["a.jpg", "b.jpg"]
    assert sorted(json.loads(ln)["source"] for ln in out.read_text().splitlines()) == ["a.jpg", "b.jpg"]
