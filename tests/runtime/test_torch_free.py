"""The ONNX Runtime path never imports torch (issue 11, item 7): importing torch alone costs
seconds, which made one photo through the CLI take 4-10 s for 0.05 s of network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PHOTO = Path(__file__).resolve().parents[1] / "fixtures" / "photos" / "astronaut.jpg"


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_load_and_detect_do_not_import_torch():
    out = _run(
        "import sys, numpy as np, facespot\n"
        "d = facespot.load()\n"
        f"faces = d({str(PHOTO)!r})\n"
        "d(np.zeros((48, 64, 3), np.uint8))\n"
        "k = facespot.load('blazeface-front')(np.zeros((128, 128, 3), np.uint8))\n"
        "print(len(faces), 'torch' in sys.modules, sorted(m for m in sys.modules if m.startswith('facespot.models')))\n"
    )
    assert out.split()[:2] == ["1", "False"], out
    assert out.strip().endswith("[]"), out


def test_cli_detect_does_not_import_torch(tmp_path):
    out = _run(
        "import sys\n"
        "from facespot.cli import main\n"
        f"rc = main(['detect', {str(PHOTO)!r}, '--json', {str(tmp_path / 'f.jsonl')!r}])\n"
        "print('RESULT', rc, 'torch' in sys.modules)\n"
    )
    assert out.strip().splitlines()[-1] == "RESULT 0 False", out
