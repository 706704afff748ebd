"""scripts/ship_model.py refuses, before any work, calibration images it must never see."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from facespot.models import build
from facespot.models.io import save_weights

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "train"
NEG = ROOT / "tests" / "fixtures" / "photos"


def _recipe(tmp_path: Path, calibration: str, val: str | None = None, train_exclude: str = "") -> Path:
    lines = [
        "model: {name: spotnet_n}",
        "data:",
        "  train:",
        f"    - {{format: wider, path: {FIX}, options: {{split: train}}{train_exclude}}}",
        f"    - {{format: negatives, path: {NEG}}}",
        "  calibration:",
        f"    - {calibration}",
    ]
    if val:
        lines += ["  val:", f"    - {val}"]
    path = tmp_path / "r.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _ship(tmp_path: Path, recipe: Path, eval_split: Path | None = None) -> subprocess.CompletedProcess:
    torch.manual_seed(0)
    weights = save_weights(build("spotnet_n"), tmp_path / "w.safetensors")
    folder = tmp_path / "weights"
    folder.mkdir()
    cmd = [sys.executable, str(ROOT / "scripts" / "ship_model.py"), str(weights), "test-model", "--recipe", str(recipe),
           "--folder", str(folder), "--no-group-offsets", "--eval-split", str(eval_split or tmp_path / "none")]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_calibration_images_that_are_validation_images_are_refused(tmp_path):
    src = f"{{format: wider, path: {FIX}, options: {{split: train}}, include: {tmp_path / 'cal.txt'}}}"
    (tmp_path / "cal.txt").write_text("0--Synth/synth_0\n")
    done = _ship(tmp_path, _recipe(tmp_path, src, val=src, train_exclude=f", exclude: {tmp_path / 'cal.txt'}"))
    assert done.returncode == 2 and "validation images of the recipe" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not list((tmp_path / "weights").iterdir())


def test_calibration_images_that_are_training_or_evaluation_images_are_refused(tmp_path):
    (tmp_path / "cal.txt").write_text("0--Synth/synth_1\n")
    src = f"{{format: wider, path: {FIX}, options: {{split: train}}, include: {tmp_path / 'cal.txt'}}}"
    done = _ship(tmp_path, _recipe(tmp_path, src))  # the training source does not exclude it
    assert done.returncode == 2 and "training images of the recipe" in done.stderr, done.stderr
    evals = tmp_path / "eval" / "images" / "0--Synth"
    evals.mkdir(parents=True)
    (evals / "synth_1.jpg").write_bytes(b"")  # an evaluation split holding the same image name
    (tmp_path / "weights").rmdir()
    done = _ship(tmp_path, _recipe(tmp_path, src, train_exclude=f", exclude: {tmp_path / 'cal.txt'}"), tmp_path / "eval")
    assert done.returncode == 2 and "evaluation split" in done.stderr, done.stderr


def test_a_killed_ship_leaves_the_weights_folder_as_it_was(tmp_path):
    """SIGTERM once its staging folder exists inside the weights folder (calibration or the exported
    file's check under way): the run stops as on Ctrl-C, says so, and removes the staging folder;
    nothing is registered."""
    import signal
    import time

    (tmp_path / "cal.txt").write_text("0--Synth/synth_0\n")
    src = f"{{format: wider, path: {FIX}, options: {{split: train}}, include: {tmp_path / 'cal.txt'}}}"
    recipe = _recipe(tmp_path, src, train_exclude=f", exclude: {tmp_path / 'cal.txt'}")
    torch.manual_seed(0)
    weights = save_weights(build("spotnet_n"), tmp_path / "w.safetensors")
    folder = tmp_path / "weights"
    folder.mkdir()
    cmd = [sys.executable, str(ROOT / "scripts" / "ship_model.py"), str(weights), "test-model", "--recipe", str(recipe),
           "--folder", str(folder), "--no-group-offsets", "--eval-split", str(tmp_path / "none"), "--blanks", "400"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(folder.glob(".ship-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(folder.glob(".ship-*")), f"no staging folder appeared (rc {proc.poll()})"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "ship_model: stopped" in err and "Traceback" not in err, err
    assert not list(folder.iterdir())  # no staging folder, no files, no manifest
