"""facespot facts stored inside an exported ``.onnx`` file (``metadata_props``).

An ONNX graph alone cannot be decoded: the runtime also needs the anchors, box coding,
input normalisation and suppression of the model it came from. Rather than a sidecar file
that can get separated from the model, ``facespot export`` writes the same keys a weights
file carries (``facespot_model``, ``config``, ``facespot_version``) into the ONNX model's
metadata, so ``facespot.load("model.onnx")`` rebuilds all of that from the one file.

Reading it back (:func:`spec_from_metadata`) is torch-free: the name and options select the
family's :class:`facespot.spec.ModelSpec`, so the ONNX Runtime path never imports torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from facespot.errors import FacespotError
from facespot.spec import META_CONFIG, META_MODEL, META_VERSION, ModelSpec, has_spec, model_spec

META_QUANTIZED = "facespot_quantized"
META_SOURCE_SHA = "facespot_weights_sha256"


def model_metadata(model: Any, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The metadata keys that let the runtime rebuild ``model``'s decoding."""
    from facespot import __version__
    from facespot.models.io import model_name

    config = dict(getattr(model, "config", {}))
    name = model_name(model)
    config.setdefault("name", name)
    meta = {META_MODEL: name, META_CONFIG: json.dumps(config, sort_keys=True), META_VERSION: __version__}
    meta.update(extra or {})
    return meta


def add_metadata(path: str | Path, metadata: dict[str, str]) -> None:
    """Set (or replace) ``metadata_props`` entries of an ONNX file in place."""
    import onnx

    path = Path(path)
    proto = onnx.load(str(path))
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in metadata.items():
        if key in existing:
            existing[key].value = str(value)
        else:
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, str(value)
    from facespot.files import write_atomically

    write_atomically(path, lambda tmp: onnx.save(proto, tmp), suffix=".onnx")  # errors: one line


def _name_and_options(meta: dict[str, str], source: str) -> tuple[str, dict[str, Any]]:
    if META_MODEL not in meta:
        raise FacespotError(
            f"{source}: this ONNX file has no facespot metadata ({META_MODEL!r}); export it with "
            "`facespot export` so the runtime knows its anchors and decoding"
        )
    try:
        config = json.loads(meta.get(META_CONFIG, "{}"))
    except json.JSONDecodeError as exc:
        raise FacespotError(f"{source}: metadata 'config' is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise FacespotError(f"{source}: metadata 'config' must be a JSON object")
    return str(meta[META_MODEL]), {k: v for k, v in config.items() if k != "name"}


def spec_from_metadata(meta: dict[str, str], source: str) -> ModelSpec | Any:
    """The decoding facts a file's metadata describes: the family's torch-free
    :class:`~facespot.spec.ModelSpec`, or (a family without a spec) the weightless model."""
    name, options = _name_and_options(meta, source)
    if not has_spec(name):
        return model_from_metadata(meta, source)
    try:
        return model_spec(name, **options)
    except FacespotError as exc:
        raise FacespotError(f"{source}: cannot describe the model: {exc}") from None


def model_from_metadata(meta: dict[str, str], source: str):
    """Rebuild the (weightless) model object a file's metadata describes (imports torch).

    Built on the ``meta`` device: no memory for weights, but anchors, coding, normalisation
    and suppression are all there, which is everything decoding needs.
    """
    import torch

    from facespot.models.registry import build

    name, options = _name_and_options(meta, source)
    try:
        with torch.device("meta"):
            return build(name, **options).eval()
    except FacespotError as exc:
        raise FacespotError(f"{source}: cannot rebuild the model: {exc}") from None
