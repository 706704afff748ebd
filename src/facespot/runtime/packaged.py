"""Weights shipped inside the package (``facespot/weights/``), found offline and hash-checked.

``facespot/weights/manifest.json`` lists the packaged files::

    {
      "format": 1,
      "default": "spotnet-s",
      "models": {
        "spotnet-s": {"file": "spotnet_s.safetensors",
                      "sha256": "<64 hex digits>",
                      "model": "spotnet_s",                    # checked on load
                      "onnx": "spotnet_s.onnx",                # optional
                      "onnx_sha256": "<64 hex digits>",
                      "description": "SpotNet-s, WIDER training split + ..."}
      }
    }

``facespot.load("default")`` (and ``--model default``) resolves ``default`` through this file
with :mod:`importlib.resources` -- never the network -- and refuses a file whose SHA-256 does
not match. The ONNX Runtime backend takes the entry's exported ``.onnx`` when there is one (no
export at start-up); the torch backend takes the ``.safetensors``. Either file must match: a truncated download or a swapped file must not silently become "the detector".
:func:`add_packaged` writes an entry (``scripts/ship_model.py`` calls it when shipping trained weights).
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

from facespot.errors import FacespotError
from facespot.files import write_atomically

PACKAGE = "facespot.weights"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1

HOW_TO_PROVIDE = (
    "Train a detector (e.g. `facespot train configs/spotnet_s.yaml --out runs/spotnet_s`) and pass "
    "its weights: `facespot detect IMAGE --model runs/spotnet_s/best.safetensors`, or in Python "
    "facespot.load('runs/spotnet_s/best.safetensors'). To ship weights as the default, run "
    "scripts/ship_model.py WEIGHTS NAME --recipe RECIPE --default (see facespot/weights/README.md)."
)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (weights can be hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def _package_dir(package: str | None) -> Path:
    """Folder of the weights package (``PACKAGE`` unless told; read at call time)."""
    package = package or PACKAGE
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        raise FacespotError(f"weights package {package!r} is not installed") from None
    return Path(str(root))


def read_manifest(package: str | None = None) -> dict[str, Any] | None:
    """The parsed manifest, or None when the package ships none."""
    folder = _package_dir(package)
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FacespotError(f"{path}: unreadable weights manifest ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise FacespotError(f"{path}: expected a JSON object with a 'models' object (see facespot.runtime.packaged)")
    return data


def packaged_names(package: str | None = None) -> list[str]:
    """Names ``facespot.load`` accepts from the packaged manifest (plus ``default`` if set)."""
    data = read_manifest(package)
    if data is None:
        return []
    names = sorted(data["models"])
    return (["default"] + names) if data.get("default") else names


def packaged_entry(name: str = "default", package: str | None = None) -> tuple[str | None, dict]:
    """``(key, entry)`` of a packaged name (``default`` resolved through the manifest); the
    entry is ``{}`` when there is none. No hash check: :func:`resolve_packaged` does that."""
    data = read_manifest(package) or {"models": {}}
    key = data.get("default") if name == "default" else name
    entry = data["models"].get(key) if key else None
    return key, entry if isinstance(entry, dict) else {}


def blur_point(name: str = "default", package: str | None = None) -> dict[str, Any] | None:
    """The measured video-blur operating point of a packaged model, or None.

    An entry may hold ``"blur": {"threshold", "sizes", "keep", "margin", "sha256", ...}``
    (``sizes``: ``[[height, threshold], ...]``, lower thresholds for smaller faces; ``margin``:
    the box growth per side the thresholds were measured with, optional), written by
    ``python benchmarks/anonymize_video.py --choose --write`` from videos made of WIDER
    *training* images. It counts only while ``sha256`` is the entry's weights hash: new weights
    under the same name (a retrained default) fall back to the documented defaults until
    measured again. Non-packaged names (files, registry names) have none."""
    try:
        entry = packaged_entry(name, package)[1]
    except FacespotError:
        return None
    point = entry.get("blur")
    if not isinstance(point, dict) or point.get("sha256") != entry.get("sha256"):
        return None
    try:
        threshold, keep = float(point["threshold"]), float(point.get("keep", point["threshold"]))
        sizes = [(float(h), float(t)) for h, t in point.get("sizes", [])]
        margin = float(point["margin"]) if "margin" in point else None
    except (KeyError, TypeError, ValueError):
        return None
    if not 0.0 <= keep <= threshold <= 1.0 or any(not 0.0 <= t <= 1.0 for _, t in sizes):
        return None
    if margin is not None and not 0.0 <= margin <= 2.0:
        return None
    return {**point, "threshold": threshold, "keep": keep, "sizes": sizes, "margin": margin}


def packaged_model_name(name: str = "default", package: str | None = None) -> str | None:
    """The registry model name a packaged entry declares (None for entries without one)."""
    return packaged_entry(name, package)[1].get("model")


def packaged_files(name: str = "default", package: str | None = None) -> list[Path]:
    """Every file a packaged entry ships (weights and ONNX): inputs no command may overwrite."""
    entry = packaged_entry(name, package)[1]
    return [_package_dir(package) / str(entry[k]) for k in ("file", "onnx") if entry.get(k)]


def resolve_packaged(name: str = "default", package: str | None = None, prefer_onnx: bool = False) -> Path:
    """Path of a packaged weights file after checking its SHA-256 against the manifest.

    ``prefer_onnx``: return the entry's exported ``.onnx`` file when it lists one."""
    folder = _package_dir(package)
    manifest_path = folder / MANIFEST
    data = read_manifest(package)
    if data is None:
        raise FacespotError(
            f"no packaged weights: {manifest_path} does not exist, so model={name!r} has nothing to load "
            f"(this build of facespot ships no trained weights yet). {HOW_TO_PROVIDE}"
        )
    key = name
    if name == "default":
        key = data.get("default")
        if not key:
            raise FacespotError(f"{manifest_path}: no 'default' entry, so model='default' has nothing to load. {HOW_TO_PROVIDE}")
    entry = data["models"].get(key)
    if not isinstance(entry, dict) or "file" not in entry or "sha256" not in entry:
        known = ", ".join(sorted(data["models"])) or "none"
        raise FacespotError(
            f"{manifest_path}: no usable entry {key!r} (needs 'file' and 'sha256'); packaged models: {known}"
        )
    file_key, hash_key = ("onnx", "onnx_sha256") if prefer_onnx and entry.get("onnx") else ("file", "sha256")
    if file_key == "onnx" and "onnx_sha256" not in entry:
        raise FacespotError(f"{manifest_path}: entry {key!r} lists an ONNX file without 'onnx_sha256'")
    path = folder / str(entry[file_key])
    if not path.is_file():
        raise FacespotError(
            f"{path}: packaged weights {key!r} are listed in {manifest_path.name} but the file is missing "
            f"(a partial install?). {HOW_TO_PROVIDE}"
        )
    digest = sha256_file(path)
    if digest.lower() != str(entry[hash_key]).lower():
        raise FacespotError(
            f"{path}: SHA-256 {digest} does not match {entry[hash_key]} in {manifest_path.name}; "
            "the packaged weights are corrupt or were replaced -- reinstall facespot or re-register the file"
        )
    return path


def add_packaged(
    weights: str | Path,
    name: str,
    folder: str | Path | None = None,
    default: bool = False,
    description: str = "",
    onnx: str | Path | None = None,
) -> dict[str, Any]:
    """Register a weights file (and optionally its exported ``.onnx``), both already inside
    ``folder``, in the manifest with their SHA-256.

    The manifest is replaced in one atomic step (temporary file + rename): until then the old
    entry and its files are what loads, after it the new ones. Files of a replaced entry that no
    entry lists any more are removed afterwards (a failure there leaves only a stray file)."""
    weights = Path(weights)
    from facespot.spec import spec_names

    if name in spec_names():
        # facespot.load / --model read a bare registry name as that architecture, untrained
        raise FacespotError(
            f"packaged name {name!r} is also a model name; give the weights a name of their own (e.g. {name}-mydata)"
        )
    folder = Path(folder) if folder is not None else _package_dir(PACKAGE)
    files = [weights] + ([Path(onnx)] if onnx is not None else [])
    for f in files:
        if f.resolve().parent != folder.resolve():
            raise FacespotError(f"{f}: copy the file into {folder} first (packaged files live next to the manifest)")
    path = folder / MANIFEST
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"format": MANIFEST_FORMAT, "models": {}}
    from facespot.models.io import META_MODEL, read_metadata

    model = read_metadata(weights)[META_MODEL]  # recorded so a loader can check what it got
    entry: dict[str, Any] = {"file": weights.name, "sha256": sha256_file(weights), "model": model, "description": description}
    if onnx is not None:
        entry.update(onnx=Path(onnx).name, onnx_sha256=sha256_file(onnx))
    old = data.setdefault("models", {}).get(name) or {}
    data["models"][name] = entry
    if default:
        data["default"] = name
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    listed = {str(e.get(k)) for e in data["models"].values() if isinstance(e, dict) for k in ("file", "onnx") if e.get(k)}
    for k in ("file", "onnx"):
        stale = old.get(k)
        if stale and str(stale) not in listed and "/" not in str(stale) and (folder / str(stale)).is_file():
            try:
                (folder / str(stale)).unlink()
            except OSError:
                pass
    return data
