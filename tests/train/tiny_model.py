"""A tiny FaceModel for fast loop-behaviour tests (not registered)."""

import numpy as np
import torch

from facespot.models.base import BoxCoding, FaceModel


class TinyNet(FaceModel):
    """A 2-layer detector over a fixed 4x4 anchor grid: fast enough for loop-behaviour tests.
    ``nan_after`` makes the forward return NaN from that call on."""

    name = "tiny_test"
    coding = BoxCoding("ssd", (0.1, 0.2))
    train_input_size = (64, 64)

    def __init__(self, nan_after: int | None = None) -> None:
        super().__init__()
        self.body = torch.nn.Conv2d(3, 8, 3, stride=16, padding=1)
        self.head = torch.nn.Conv2d(8, 5, 1)
        self.calls = 0
        self.nan_after = nan_after

    def forward(self, x):
        self.calls += 1
        y = self.head(torch.relu(self.body(x))).permute(0, 2, 3, 1).reshape(x.shape[0], -1, 5)
        if self.nan_after is not None and self.calls > self.nan_after:
            y = y * float("nan")
        return y[..., :4], y[..., 4]

    def anchors(self, h, w):
        c = (np.arange(4) + 0.5) / 4
        cy, cx = np.meshgrid(c, c, indexing="ij")
        return np.stack([cx.ravel(), cy.ravel(), np.full(16, 0.4), np.full(16, 0.4)], 1).astype(np.float32)
