"""Learning-rate schedule: linear warm-up, then step decay, cosine decay or constant.

Expressed as a per-iteration multiplier of the base rate (for ``LambdaLR``), so warm-up
is smooth within the first epochs and resuming restores it exactly from the step count.
"""

from __future__ import annotations

import math
from typing import Callable

from facespot.train.config import ScheduleConfig


def lr_factor(cfg: ScheduleConfig, iters_per_epoch: int, epochs: int) -> Callable[[int], float]:
    """``step -> multiplier`` for ``torch.optim.lr_scheduler.LambdaLR``."""
    ipe = max(int(iters_per_epoch), 1)
    warm = int(round(cfg.warmup_epochs * ipe))
    total = max(epochs * ipe, 1)

    def factor(step: int) -> float:
        if warm > 0 and step < warm:
            return cfg.warmup_start + (1.0 - cfg.warmup_start) * step / warm
        if cfg.kind == "step":
            epoch = step // ipe
            return cfg.gamma ** sum(1 for m in cfg.milestones if epoch >= m)
        if cfg.kind == "cosine":
            t = min(max(step - warm, 0) / max(total - warm, 1), 1.0)
            return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))
        return 1.0

    return factor
