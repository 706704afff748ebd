"""DDP ranks agree before each step (issue 20, item 5): a rank that has to skip a batch (all its
images unreadable) or stop (a non-finite loss) must not leave the others waiting in the
gradient all-reduce. Two Gloo processes through PyTorch's own launcher, as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from facespot.train.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "train"

# rank 1's loss becomes NaN at its first step; rank 0's stays finite
POISON = r"""
import os, sys
from facespot.train import loop
if os.environ["RANK"] == "1":
    real = loop.loss_from_targets
    def poisoned(*a, **k):
        parts = real(*a, **k)
        parts.total = parts.total * float("nan")
        return parts
    loop.loss_from_targets = poisoned
from facespot.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _torchrun(tmp_path, script_args, *extra):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *script_args, "train",
           str(FIX / "tiny.yaml"), "--device", "cpu", "--epochs", "1", "--out", str(out),
           "--set", "val_every=0", "--set", "data.val=[]", *extra]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both ranks
        proc.communicate()
        pytest.fail("the DDP run hung: one rank waited for the other in a collective")
    return out, subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


@pytest.mark.timeout(200)
def test_a_batch_unreadable_on_one_rank_is_skipped_by_all(tmp_path):
    data = tmp_path / "train"
    shutil.copytree(FIX, data)
    (data / "images" / "0--Synth" / "synth_2.png").write_bytes(b"not a png")
    # 4 images, 2 ranks, 1 per batch: 2 steps; in one of them only one rank holds the broken image
    out, done = _torchrun(tmp_path, ["-m", "facespot"], "--batch-size", "1", "--set", f"data.train.0.path={data}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    ck = load_checkpoint(out / "last.pt")
    assert (ck.epoch, ck.global_step) == (1, 1)  # the step with the broken image was skipped by both ranks
    epochs = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "epoch/skipped_images" in r]
    assert epochs[-1]["epoch/skipped_images"] == 1


@pytest.mark.timeout(200)
def test_a_nan_loss_on_one_rank_stops_every_rank_with_the_message(tmp_path):
    script = tmp_path / "poison.py"
    script.write_text(POISON)
    out, done = _torchrun(tmp_path, [str(script)], "--batch-size", "2")
    assert done.returncode != 0
    assert done.stderr.count("facespot: error: training stopped: the loss became") == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr.split("facespot: error:")[0]
    assert not (out / "last.pt").exists()
