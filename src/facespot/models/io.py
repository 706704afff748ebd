"""Weights files: safetensors with enough metadata to rebuild the model.

A facespot weights file is a plain ``.safetensors`` state dict whose header metadata holds
``facespot_model`` (registry name), ``config`` (JSON of ``model.config``, the constructor
options) and ``facespot_version``. So ``load_model(path)`` needs nothing but the file, and
loading into the wrong architecture fails with a message naming both models instead of a
wall of missing-key errors. safetensors (not pickle) means a weights file can never run code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from facespot.errors import FacespotError
from facespot.files import write_atomically
from facespot.spec import META_CONFIG, META_MODEL, META_VERSION  # defined torch-free, re-exported


def model_name(model: Any) -> str:
    """Registry name of a model (``config["name"]`` when built by the registry)."""
    return str(getattr(model, "config", {}).get("name") or getattr(model, "name", "") or type(model).__name__)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside DataParallel / DistributedDataParallel / ``torch.compile``,
    so saved keys never carry a ``module.`` or ``_orig_mod.`` prefix."""
    while True:
        if isinstance(model, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, torch.nn.Module):
            model = model._orig_mod
        else:
            return model


def _options(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "name"}


HALF_MIN_SIZE = 256  # tensors with fewer values stay float32 in half files (onnx_export.halve_weights too)


def save_weights(model: torch.nn.Module, path: str | Path, extra_metadata: dict[str, str] | None = None,
                 half: bool = False) -> Path:
    """Write ``model``'s weights to ``path`` atomically (temp file + ``os.replace``).

    A crash mid-write never leaves a truncated file where a good one was. ``half`` stores
    floating-point tensors of at least :data:`HALF_MIN_SIZE` values as float16 (half the file;
    loading casts them back to the model's float32), for packaged weights; smaller ones (biases,
    BatchNorm statistics, score offsets: ~4% of SpotNet's values) stay float32, as in the ONNX
    file, so a calibration's logit shift is stored exactly and both files hold the same numbers.
    """
    from safetensors.torch import save_file

    from facespot import __version__

    model = unwrap(model)
    path = Path(path)
    name = model_name(model)
    config = dict(getattr(model, "config", {}))
    config.setdefault("name", name)
    try:
        config_json = json.dumps(config, sort_keys=True)
    except TypeError as exc:
        raise FacespotError(f"model {name!r}: config is not JSON-serialisable ({exc})") from None
    metadata = {META_MODEL: name, META_CONFIG: config_json, META_VERSION: __version__}
    if half:
        metadata["weights_dtype"] = "float16"
    metadata.update(extra_metadata or {})

    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in model.state_dict().items():
        t = value.detach().cpu().contiguous()
        if half and t.is_floating_point() and t.numel() >= HALF_MIN_SIZE:
            t = t.half()
        if t.data_ptr() in seen and t.numel():  # tied tensors: safetensors refuses shared storage
            t = t.clone()
        seen.add(t.data_ptr())
        tensors[key] = t

    return write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_metadata(path: str | Path) -> dict[str, str]:
    """Header metadata of a weights file; a missing or unreadable file -> :class:`FacespotError`."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FacespotError(f"{path}: weights file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise FacespotError(f"{path}: not a readable safetensors weights file ({exc})") from None
    if META_MODEL not in meta:
        raise FacespotError(f"{path}: not a facespot weights file (no {META_MODEL!r} in its metadata)")
    return dict(meta)


def _read_config(path: Path, meta: dict[str, str]) -> dict[str, Any]:
    try:
        config = json.loads(meta.get(META_CONFIG, "{}"))
    except json.JSONDecodeError as exc:
        raise FacespotError(f"{path}: metadata 'config' is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise FacespotError(f"{path}: metadata 'config' must be a JSON object")
    return config


def _read_state(path: Path, map_location: str | torch.device) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device=str(map_location))
    except Exception as exc:
        raise FacespotError(f"{path}: cannot read the weights ({exc})") from None


def _load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, saved: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise FacespotError(
            f"{path}: weights of {saved!r} do not fit the {model_name(model)!r} model built here "
            f"(different options?): {detail[:400]}"
        ) from None


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model a weights file was saved from and load it strictly (eval mode)."""
    from facespot.models.registry import build

    path = Path(path)
    meta = read_metadata(path)
    name = meta[META_MODEL]
    config = _read_config(path, meta)
    try:
        model = build(name, **_options(config))
    except FacespotError as exc:
        raise FacespotError(f"{path}: cannot rebuild the model: {exc}") from None
    _load_strict(model, _read_state(path, map_location), path, name)
    return model.to(map_location).eval()


def load_weights_into(model: torch.nn.Module, path: str | Path, map_location: str | torch.device | None = None,
                      new_ok: tuple[str, ...] | list[str] = ()) -> torch.nn.Module:
    """Load a weights file into an existing model, refusing another model's weights.

    ``new_ok``: prefixes of this model's parameters the file may lack (say ``head.kps``: a
    landmark head added to a detector trained without one); they keep their fresh values.
    Anything else missing or unexpected is refused, as is a file of another model.
    """
    model = unwrap(model)
    path = Path(path)
    meta = read_metadata(path)
    saved = meta[META_MODEL]
    here = model_name(model)
    if saved != here:
        raise FacespotError(f"{path}: holds weights of model {saved!r}, cannot load them into model {here!r}")
    if map_location is None:
        try:
            map_location = next(model.parameters()).device
        except StopIteration:
            map_location = "cpu"
    state = _read_state(path, map_location)
    if new_ok:
        fresh = model.state_dict()
        for key, value in fresh.items():
            if key not in state and any(key == p or key.startswith(p.rstrip(".") + ".") for p in new_ok):
                state[key] = value.to(map_location)
    _load_strict(model, state, path, saved)
    return model
