"""``facespot models``: list the registered detectors and packaged weights, or print one card.

``facespot models`` prints one row per model (params, MACs and anchors at 640x480, or at
the model's fixed input size, which the row states), one more row per alternative backbone
(``yolo backbone=pool_resnet``, ...), then the packaged trained weights (``default``,
``blazeface-front``, ...); ``facespot models NAME`` prints the full card of a model or of a
packaged entry; ``--option KEY=VALUE`` sets a constructor option (``--option backbone=pool_resnet``);
``facespot models --weights FILE`` prints the card of a saved model.

Cards only need the architecture, never the weights: every model is built on torch's ``meta``
device (no memory, no initialisation), so listing all of them takes about as long as
importing torch.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the available models and packaged weights, or show one model's card")
    p.add_argument("name", nargs="?", help="a model name or a packaged weights name (e.g. default): print its card")
    p.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="constructor option for NAME, e.g. --option backbone=pool_resnet (repeatable)")  # fmt: skip
    p.add_argument("--weights", metavar="FILE", help="print the card of the model saved in this weights file")
    p.set_defaults(func=run)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def _parse_options(items: list[str]) -> dict[str, Any]:
    import yaml

    from facespot.errors import FacespotError

    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise FacespotError(f"--option expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def meta_build(name: str, options: dict[str, Any] | None = None):
    """The architecture of ``name`` on the ``meta`` device: parameters have shapes but no memory."""
    import torch

    from facespot import models

    with torch.device("meta"):
        return models.build(name, **(options or {})).eval()


def saved_architecture(path):
    """The architecture a weights file declares, on the ``meta`` device. Its metadata is the
    user's file, so bad JSON, a config that is not an object or options the model does not
    take are one :class:`FacespotError` line naming the file, as ``load_model`` gives."""
    from pathlib import Path

    from facespot.errors import FacespotError
    from facespot.models.io import _read_config, read_metadata
    from facespot.spec import META_MODEL

    path = Path(path)
    meta = read_metadata(path)
    config = _read_config(path, meta)
    try:
        return meta_build(meta[META_MODEL], {k: v for k, v in config.items() if k != "name"})
    except FacespotError as exc:
        raise FacespotError(f"{path}: cannot rebuild the model: {exc}") from None
    except (TypeError, ValueError, KeyError) as exc:  # an option value the constructor refuses
        raise FacespotError(f"{path}: cannot rebuild the model {meta[META_MODEL]!r} from its metadata ({exc})") from None


def _backbone_variants(model) -> list[str]:
    """Other backbones a family takes (its module's ``BACKBONES``), when it has a ``backbone`` option."""
    import sys

    current = model.config.get("backbone")
    family = sys.modules.get(type(model).__module__)
    choices = getattr(family, "BACKBONES", ()) if current is not None else ()
    return [b for b in choices if b != current]


def _row(label: str, model) -> list[str]:
    from facespot.models import card

    m = card.measure(model)
    size = f"fixed {m.size_text}" if model.fixed_input_size else "any"
    return [label, card.format_count(card.count_params(model)), card.format_count(m.macs), m.size_text, str(m.anchors), size]


def _packaged_rows() -> tuple[list[list[str]], str | None]:
    from facespot.runtime.packaged import read_manifest

    data = read_manifest() or {"models": {}}
    rows = []
    for key, entry in sorted(data["models"].items()):
        if isinstance(entry, dict):
            rows.append([key, str(entry.get("model", "?")), "onnx + safetensors" if entry.get("onnx") else "safetensors",
                         str(entry.get("description", ""))])  # fmt: skip
    return rows, data.get("default")


def _trained_names() -> dict[tuple[str, str | None], list[str]]:
    """``(model, backbone or None) -> packaged names`` trained for it (read from the files' metadata)."""
    import json

    from facespot.errors import FacespotError
    from facespot.models.io import META_CONFIG, read_metadata
    from facespot.runtime.packaged import _package_dir, read_manifest

    data = read_manifest() or {"models": {}}
    out: dict[tuple[str, str | None], list[str]] = {}
    for key, entry in sorted(data["models"].items()):
        if not isinstance(entry, dict) or not entry.get("model"):
            continue
        backbone = None
        try:
            config = json.loads(read_metadata(_package_dir(None) / str(entry.get("file"))).get(META_CONFIG, "{}"))
            backbone = config.get("backbone")
        except (FacespotError, ValueError, AttributeError):
            pass
        out.setdefault((str(entry["model"]), backbone), []).append(key)
    return out


def _card_text(model, extra: list[str] | None = None) -> str:
    from facespot.models import card

    text = card.render_card(card.model_card(model), model)
    return "\n".join([text, *(extra or [])])


def _packaged_card(name: str) -> str:
    """Card of a packaged entry: the architecture its weights file declares, plus the entry."""
    from facespot.runtime.packaged import packaged_entry, resolve_packaged

    path = resolve_packaged(name)  # hash-checked
    model = saved_architecture(path)
    key, entry = packaged_entry(name)
    lines = [f"packaged    {key}" + (" (the default)" if key == packaged_entry("default")[0] else ""), f"weights     {path}"]
    if entry.get("onnx"):
        lines.append(f"onnx        {path.with_name(entry['onnx'])}")
    if entry.get("description"):
        lines.append(f"trained     {entry['description']}")
    return _card_text(model, lines)


def run(args: argparse.Namespace) -> int:
    from facespot.errors import FacespotError
    from facespot.runtime.packaged import packaged_names

    options = _parse_options(args.options)
    if args.weights:
        print(_card_text(saved_architecture(args.weights)))
        return 0
    if args.name:
        from facespot import models

        if args.name in models.available():
            print(_card_text(meta_build(args.name, options)))
            return 0
        if args.name in packaged_names():
            if options:
                raise FacespotError(f"--option applies to model architectures, not to packaged weights {args.name!r}")
            print(_packaged_card(args.name))
            return 0
        known = ", ".join(models.available() + packaged_names())
        raise FacespotError(f"unknown model {args.name!r}; known models and packaged weights: {known}")
    if options:
        raise FacespotError("--option needs a model NAME")
    from facespot import models

    trained = _trained_names()

    def names_for(name: str, model) -> str:
        got = trained.get((name, model.config.get("backbone")), [])
        if model.config.get("backbone") == meta_build(name).config.get("backbone"):  # the family's own default
            got = got + trained.get((name, None), [])
        return ", ".join(sorted(set(got))) or "—"

    rows = []
    for name in models.available():
        model = meta_build(name)
        rows.append(_row(name, model) + [names_for(name, model)])
        for backbone in _backbone_variants(model):
            variant = meta_build(name, {"backbone": backbone})
            rows.append(_row(f"{name} backbone={backbone}", variant) + [names_for(name, variant)])
    print(_table(rows, ["model", "params", "MACs", "at (WxH)", "anchors", "input size", "trained (packaged)"]))
    print("\nMACs and anchors at 640x480, or at the model's fixed input size. `facespot models NAME` shows a card;")
    print("`--option backbone=...` picks another backbone. \"trained\": packaged weights of that architecture (`--model NAME`);")
    print("the others build untrained (train them with `facespot train`).")
    packaged, default = _packaged_rows()
    if packaged:
        print(f"\nPackaged trained weights (`--model NAME`, facespot.load(NAME); `default` is {default}):\n")
        print(_table([r[:3] for r in packaged], ["name", "model", "files"]))
        for r in packaged:
            print(f"  {r[0]}: {r[3]}")
    return 0
