"""Hand-made fake model and backend for exact mapping tests."""

from __future__ import annotations

import numpy as np

from facespot.models.base import BoxCoding, InputNorm


class FakeModel:
    """Duck-typed model: chosen anchors, SSD coding; enough for :class:`Detector`."""

    coding = BoxCoding("ssd", (0.1, 0.2))
    input_norm = InputNorm()
    suppression = "hard"
    train_input_size = (128, 128)

    def __init__(self, anchors, fixed=None, num_keypoints=0):
        self._anchors = np.asarray(anchors, np.float32)
        self.fixed_input_size = fixed
        self.num_keypoints = num_keypoints
        self.config = {"name": "fake"}
        self.calls = []

    def anchors(self, h, w):
        return self._anchors


class FakeBackend:
    """Returns fixed dense outputs for any input; records input shapes."""

    name = "fake"
    threads = 1

    def __init__(self, deltas, logits, points=None):
        self.deltas, self.logits, self.points = (None if a is None else np.asarray(a, np.float32) for a in (deltas, logits, points))
        self.shapes = []

    def run(self, x):
        self.shapes.append(x.shape)
        b = x.shape[0]
        out = [np.repeat(self.deltas[None], b, 0), np.repeat(self.logits[None], b, 0)]
        if self.points is not None:
            out.append(np.repeat(self.points[None], b, 0))
        return out
