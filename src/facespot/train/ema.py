"""Exponential moving average of the weights (Polyak averaging).

A small detector trained for few epochs on a CPU ends most epochs mid-way down a noisy
slope; the running average of its weights is a better model at every point of the run
(and the one a stopped run should ship). The decay ramps up from 0 so the early, fast-
changing weights are not averaged over too long a window (as YOLOv5 / timm do).
"""

from __future__ import annotations

import copy
import math

import torch


class ModelEMA:
    """``ema = decay * ema + (1 - decay) * model`` after every optimiser step, for every
    floating-point entry (BatchNorm running statistics averaged too, as YOLOv5 / timm do);
    integer buffers (``num_batches_tracked``) are copied."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.9998, ramp: float = 2000.0, updates: int = 0) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.ramp, self.updates = float(decay), float(ramp), int(updates)

    def current_decay(self) -> float:
        return self.decay * (1.0 - math.exp(-self.updates / self.ramp))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = self.current_decay()
        src = model.state_dict()
        for name, v in self.module.state_dict().items():
            s = src[name].detach()
            if v.dtype.is_floating_point:
                v.mul_(d).add_(s, alpha=1.0 - d)
            else:
                v.copy_(s)

    def state_dict(self) -> dict:
        return {"model": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["model"])
        self.updates = int(state.get("updates", 0))
