"""The campaign's shell scripts (campaign/, scripts/): they parse, and the validation script
(and scripts/holdout_operating_point.py) refuse bad input with a message and exit 2 instead of a shell error half-way (a number written
into validation.jsonl must come from a whole run); MODELS.md's validation table agrees with that log."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*ROOT.glob("campaign/*.sh"), *ROOT.glob("scripts/*.sh")])
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_script_parses(script):
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def validate(*args, env=None):
    return subprocess.run(["bash", str(ROOT / "campaign" / "validate.sh"), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=ROOT)  # fmt: skip


def test_validate_without_arguments_prints_its_usage():
    proc = validate()
    assert proc.returncode == 2 and "bash campaign/validate.sh 47" in proc.stderr


def test_validate_refuses_an_unknown_split():
    proc = validate("47", env={"SPLIT": "evaluation"})
    assert proc.returncode == 2 and "SPLIT is validation or calibration" in proc.stderr


def test_validate_names_a_missing_snapshot_or_weights_file(tmp_path):
    if not (ROOT.parent / "data" / "wider-train" / "WIDER_val" / "images").is_dir():
        proc = validate("999")
        assert proc.returncode == 2 and "lay the data out first" in proc.stderr
        return
    if not (ROOT.parent / "shared" / "data" / "widerface" / "eval_tools").is_dir():
        proc = validate("999")
        assert proc.returncode == 2 and "the WIDER ground truth" in proc.stderr
        return
    proc = validate("999")
    assert proc.returncode == 2 and "no ../snapshots/spotnet_s2/epoch_999.pt" in proc.stderr
    proc = validate(str(tmp_path / "missing.safetensors"))
    assert proc.returncode == 2 and "missing.safetensors" in proc.stderr


def test_the_validation_table_in_models_md_matches_the_committed_validation_log():
    """Every epoch of campaign/spotnet_s2/validation.jsonl appears in MODELS.md's validation table
    with the same easy / medium / hard (3 decimals): the table is not retyped from memory."""
    log = ROOT / "campaign" / "spotnet_s2" / "validation.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    logged = {int(r["name"][6:]): r for r in rows if r["split"] == "validation" and re.fullmatch(r"epoch_\d{3}", r["name"])}
    assert logged, "no epoch validated in the log"
    table = {}
    for line in (ROOT / "MODELS.md").read_text().splitlines():
        m = re.match(r"\| \**epoch (\d+)\**(?: \([^|]*\))? \| \**([\d.]+)\** \| \**([\d.]+)\** \| \**([\d.]+)\** \|$", line)
        if m:
            table[int(m.group(1))] = tuple(float(v) for v in m.groups()[1:])
    for epoch, r in logged.items():
        assert epoch in table, f"epoch {epoch} is validated in {log.name} but not in MODELS.md's table"
        want = tuple(round(r[k] + 1e-9, 3) for k in ("easy", "medium", "hard"))
        assert table[epoch] == want, f"epoch {epoch}: MODELS.md says {table[epoch]}, {log.name} {want}"


def test_holdout_operating_point_names_missing_data(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "holdout_operating_point.py"), "--model", "default",
                           "--data", str(tmp_path / "nowhere")], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 2 and "lay the data out first" in proc.stderr and "Traceback" not in proc.stderr


def test_holdout_operating_point_names_a_missing_listed_image(tmp_path):
    (tmp_path / "WIDER_val" / "images").mkdir(parents=True)
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "holdout_operating_point.py"), "--model", "default",
                           "--data", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 2 and "listed image(s) missing" in proc.stderr and "Traceback" not in proc.stderr
