"""A training run checks what validation will need before its first step (issue 20, item 9):
a bad ``data.wider_gt_dir`` or a val set the WIDER ground truth does not know used to fail only
at the first validation, after the training, with no weights written."""

from __future__ import annotations

from pathlib import Path

import pytest

from facespot.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "train" / "tiny.yaml"
WIDER_GT = ROOT / "tests" / "fixtures" / "eval" / "wider_gt"  # a real .mat set that knows 3 other images


@pytest.mark.parametrize("gt_dir, words", [
    ("/nonexistent/eval_tools", "wider_face_val.mat: file not found"),
    (str(WIDER_GT), "4 of 4 validation image(s) are not in its WIDER val ground truth (first: '0--Synth/synth_0')"),
])  # fmt: skip
def test_validation_needs_are_checked_before_the_first_step(tmp_path, capsys, gt_dir, words):
    out = tmp_path / "run"
    argv = ["train", str(TINY), "--out", str(out), "--set", f"data.wider_gt_dir={gt_dir}", "--set", "max_iters_per_epoch=1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("facespot: error:") and err.count("\n") == 1 and words in err, err
    assert not (out / "metrics.jsonl").exists() and not (out / "last.pt").exists()  # not one step was taken
