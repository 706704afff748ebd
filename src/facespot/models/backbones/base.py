"""The one shape every backbone has: a list of stages, each returning a feature map.

Detection heads need features from several depths (Tiny Faces fuses res3 + res4, the grid
detector can fuse stride 16 and 32), so a backbone is a ``ModuleList`` of stages and
``forward`` returns every stage's output, with ``strides`` and ``channels`` saying what
each one is. Stages a model does not need are never built (``max_stride``), so they cost
neither parameters nor compute.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class Backbone(nn.Module):
    """Sequential stages; ``forward(x)`` -> list of stage outputs, shallow to deep."""

    def __init__(
        self,
        stages: Sequence[nn.Module],
        strides: Sequence[int],
        channels: Sequence[int],
        names: Sequence[str],
        max_stride: int | None = None,
    ) -> None:
        super().__init__()
        keep = len(stages) if max_stride is None else sum(1 for s in strides if s <= max_stride)
        if keep == 0:
            raise ValueError(f"max_stride {max_stride} is below the first stage's stride {strides[0]}")
        self.stages = nn.ModuleList(stages[:keep])
        self.strides: list[int] = list(strides[:keep])
        self.channels: list[int] = list(channels[:keep])
        self.names: list[str] = list(names[:keep])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def index_of_stride(self, stride: int) -> int:
        """Index of the stage whose output has ``stride``; ValueError if there is none."""
        if stride not in self.strides:
            raise ValueError(f"no stage at stride {stride}; this backbone has strides {self.strides}")
        return self.strides.index(stride)
