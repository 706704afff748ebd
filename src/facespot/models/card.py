"""Model cards: parameter and MAC counts, anchor counts, and their text rendering.

MACs (multiply-accumulates) are counted with forward hooks on ``Conv2d``,
``ConvTranspose2d`` and ``Linear`` modules, from the shapes each call actually sees, so
strides, padding, grouped and depthwise convolutions come out right without per-model
bookkeeping. Element-wise ops (BN, activations, pooling, additions) are not counted,
which is the usual convention for detector papers. The forward pass runs on the ``meta``
device when the model allows it, so a card costs no arithmetic even for big backbones.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from facespot.models.base import FaceModel, ModelCard

CARD_SIZE = (480, 640)  # (height, width) at which cards compare models


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def _module_macs(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        # each output element: (C_in / groups) * kh * kw multiply-adds
        kh, kw = module.kernel_size
        return int(output.numel()) * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.ConvTranspose2d):
        # each *input* element is scattered into (C_out / groups) * kh * kw outputs
        kh, kw = module.kernel_size
        return int(inputs[0].numel()) * (module.out_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return int(output.numel()) * module.in_features
    return 0


def _meta_copy(model: nn.Module) -> nn.Module:
    """The same architecture on the ``meta`` device: rebuilt from the registry when the
    model came from it (allocates nothing), else a deep copy moved there."""
    config = getattr(model, "config", None)
    if isinstance(config, dict) and config.get("name"):
        from facespot.models.registry import build

        try:
            with torch.device("meta"):
                net = build(config["name"], **{k: v for k, v in config.items() if k != "name"})
            if type(net) is type(model):
                return net.eval()
        except Exception:
            pass
    return copy.deepcopy(model).to("meta").eval()


def count_macs(model: nn.Module, height: int, width: int, use_meta: bool = True) -> int:
    """Multiply-accumulates of one forward pass on a ``(1, 3, height, width)`` input."""
    total = 0

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        nonlocal total
        total += _module_macs(module, inputs, output)

    def run(net: nn.Module, device: str) -> int:
        nonlocal total
        total = 0
        handles = [
            m.register_forward_hook(hook)
            for m in net.modules()
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
        ]
        try:
            with torch.no_grad():
                net(torch.zeros(1, 3, height, width, device=device))
        finally:
            for h in handles:
                h.remove()
        return total

    was_training = model.training
    if use_meta:
        try:
            if not all(p.is_meta for p in model.parameters()):
                return run(_meta_copy(model), "meta")
            try:  # already weightless (facespot models builds cards on meta): no second copy
                return run(model.eval(), "meta")
            finally:
                model.train(was_training)
        except Exception:  # an op without a meta kernel: fall back to a real pass
            pass
    device = next((p.device.type for p in model.parameters()), "cpu")
    model.eval()
    try:
        return run(model, device)
    finally:
        model.train(was_training)


@dataclass
class Measurement:
    """What the card measured and at which input size (a fixed-size model is measured at its size)."""

    height: int
    width: int
    macs: int
    anchors: int

    @property
    def size_text(self) -> str:
        return f"{self.width}x{self.height}"


def measure(model: FaceModel, size: tuple[int, int] | None = None) -> Measurement:
    """MACs and anchors at ``size`` (default: 640x480, or the model's fixed input size)."""
    h, w = size or model.fixed_input_size or CARD_SIZE
    return Measurement(h, w, count_macs(model, h, w), int(len(model.anchors(h, w))))


def model_card(model: FaceModel, measured: Measurement | None = None) -> ModelCard:
    """The :class:`ModelCard` of a built model.

    ``macs_640x480`` / ``anchors_640x480`` stay ``None`` for fixed-size models (they
    cannot run at 640x480); their numbers at the native size are in ``notes``.
    """
    m = measured or measure(model)
    at_card_size = (m.height, m.width) == CARD_SIZE
    notes = []
    if not at_card_size:
        notes.append(f"fixed input {m.size_text}: {format_count(m.macs)} MACs, {m.anchors} anchors")
    suppression = getattr(model, "suppression", None)
    if suppression:
        notes.append(f"suppression: {'blending NMS' if suppression == 'blend' else 'hard NMS'}")
    if model.num_keypoints:
        notes.append(f"{model.num_keypoints} keypoints")
    return ModelCard(
        name=str(model.config.get("name") or model.name),
        paper=model.paper,
        params=count_params(model),
        macs_640x480=m.macs if at_card_size else None,
        anchors_640x480=m.anchors if at_card_size else None,
        anchor_layout=model.describe_anchors(),
        input_norm=model.input_norm,
        fixed_input_size=model.fixed_input_size,
        notes="; ".join(notes),
    )


def format_count(n: int | None) -> str:
    """``1234567 -> '1.23M'``; ``None -> '-'``."""
    if n is None:
        return "-"
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def render_card(card: ModelCard, model: FaceModel | None = None) -> str:
    """Human-readable card, printed by ``facespot models NAME``."""
    norm = card.input_norm
    if card.fixed_input_size:
        size = f"fixed {card.fixed_input_size[1]}x{card.fixed_input_size[0]} (WxH)"
    else:
        size = "any (fully convolutional)"
    lines = [
        f"model       {card.name}",
        f"paper       {card.paper}",
        f"params      {card.params:,} ({format_count(card.params)})",
        f"MACs        {format_count(card.macs_640x480)} at 640x480" if card.macs_640x480 is not None else "MACs        - at 640x480 (fixed-size model, see notes)",
        f"anchors     {card.anchors_640x480} at 640x480" if card.anchors_640x480 is not None else "anchors     - at 640x480 (fixed-size model, see notes)",
        f"layout      {card.anchor_layout or '-'}",
        f"input size  {size}",
        f"input norm  {norm.channel_order}, mean {tuple(norm.mean)}, std {tuple(norm.std)} (0..255 units)",
    ]
    if model is not None:
        th, tw = model.train_input_size
        lines.append(f"train size  {tw}x{th}")
        coding = model.coding
        lines.append(f"box coding  {coding.kind}" + (f", variances {tuple(coding.variances)}" if coding.kind == "ssd" else ""))
    if card.notes:
        lines.append(f"notes       {card.notes}")
    return "\n".join(lines)
