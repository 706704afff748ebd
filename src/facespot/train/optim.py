"""Optimiser and learning-rate schedule of a run."""

from __future__ import annotations

import torch

from facespot.train.config import TrainConfig
from facespot.train.schedule import lr_factor


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Weight decay on conv/linear weights only: decaying BatchNorm scales and biases
    only pulls them towards zero without regularising anything."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    o = cfg.optim
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0)
    return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas))


def make_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, iters_per_epoch: int):
    """Per-iteration warm-up + decay (:func:`facespot.train.schedule.lr_factor`)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg.schedule, iters_per_epoch, cfg.epochs))
