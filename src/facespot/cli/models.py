"""``facespot models``: list the registered detectors, or print one model's card.

``facespot models`` prints one row per model (params, MACs and anchors at 640x480, or at
the model's fixed input size, which the row states); ``facespot models NAME`` prints the
full card; ``facespot models --weights FILE`` prints the card of a saved model.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the available models or show one model's card")
    p.add_argument("name", nargs="?", help="a model name: print its card")
    p.add_argument("--weights", metavar="FILE", help="print the card of the model saved in this weights file")
    p.set_defaults(func=run)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def run(args: argparse.Namespace) -> int:
    from facespot import models
    from facespot.models import card

    if args.weights:
        from facespot.models.io import load_model

        model = load_model(args.weights)
        print(card.render_card(card.model_card(model), model))
        return 0
    if args.name:
        model = models.build(args.name)  # unknown names -> FacespotError listing the known ones
        print(card.render_card(card.model_card(model), model))
        return 0
    rows = []
    for name in models.available():
        model = models.build(name)
        m = card.measure(model)
        size = f"fixed {m.size_text}" if model.fixed_input_size else "any"
        rows.append([name, card.format_count(card.count_params(model)), card.format_count(m.macs), m.size_text, str(m.anchors), size])
    print(_table(rows, ["model", "params", "MACs", "at (WxH)", "anchors", "input size"]))
    print("\nMACs and anchors at 640x480, or at the model's fixed input size. `facespot models NAME` shows a card.")
    return 0
