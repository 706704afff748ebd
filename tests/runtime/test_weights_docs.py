"""The docs name the weights files that ship, not ones a release replaced.

Releases rename the default's files (their names carry the content hash); MODELS.md once kept
listing the files of the release before. Every hashed weights file name that README.md,
MODELS.md or the weights README mentions must be one the manifest lists, and the default's
files must be named in MODELS.md (its table of packaged models) and the weights README.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "src" / "facespot" / "weights"
DOCS = [ROOT / "README.md", ROOT / "MODELS.md", WEIGHTS / "README.md"]
HASHED = re.compile(r"\b[a-z0-9_]+-[0-9a-f]{8}\.(?:safetensors|onnx)\b")


def _manifest() -> dict:
    return json.loads((WEIGHTS / "manifest.json").read_text())


def _shipped() -> set[str]:
    return {e[k] for e in _manifest()["models"].values() for k in ("file", "onnx") if e.get(k)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_name_only_shipped_files(doc: Path) -> None:
    stale = sorted(set(HASHED.findall(doc.read_text())) - _shipped())
    assert not stale, f"{doc.relative_to(ROOT)} names weights files that do not ship (a release renamed them): {stale}"


@pytest.mark.parametrize("doc", [ROOT / "MODELS.md", WEIGHTS / "README.md"], ids=lambda p: str(p.relative_to(ROOT)))
def test_default_files_named(doc: Path) -> None:
    data = _manifest()
    entry = data["models"][data["default"]]
    text = doc.read_text()
    for key in ("file", "onnx"):
        assert entry[key] in text, f"{doc.relative_to(ROOT)} does not name the default's {key} file {entry[key]}"


def test_the_check_can_fail() -> None:
    assert HASHED.findall("files `spotnet_s2-0eb86432.safetensors`, `spotnet_s2-721a950c.onnx`") == [
        "spotnet_s2-0eb86432.safetensors",
        "spotnet_s2-721a950c.onnx",
    ]
    assert "spotnet_s2-0eb86432.safetensors" not in _shipped()
