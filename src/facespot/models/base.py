"""What every facespot model promises, so one trainer and one runtime serve them all.

A model is a ``torch.nn.Module`` whose ``forward`` maps a normalised ``(B, 3, H, W)``
batch to *dense* predictions over a flat list of ``A`` anchors:

* ``deltas``  ``(B, A, 4)`` box regression, decoded by the model's :class:`BoxCoding`;
* ``logits``  ``(B, A)`` face logit (score = sigmoid; a 2-way softmax head returns
  ``l_face - l_background``, which is the same probability);
* ``points``  ``(B, A, K, 2)`` keypoint regression, only when ``num_keypoints > 0``.

``anchors(height, width)`` returns the matching ``(A, 4)`` ``cxcywh`` anchors normalised
to the input, as NumPy, so the ONNX runtime can decode without the torch graph.
Decoding itself is shared: :func:`facespot.spec.decode_outputs`. The runtime's torch-free
description of each model (:class:`facespot.spec.ModelSpec`) must agree with these
attributes (``tests/test_spec.py`` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from facespot.spec import BoxCoding, InputNorm, decode_outputs  # noqa: F401  (defined torch-free, re-exported)


@dataclass
class ModelCard:
    """Facts a user needs before choosing a model; printed by ``facespot models``."""

    name: str
    paper: str
    params: int = 0
    macs_640x480: int | None = None
    anchors_640x480: int | None = None
    anchor_layout: str = ""
    input_norm: InputNorm = field(default_factory=InputNorm)
    fixed_input_size: tuple[int, int] | None = None
    notes: str = ""


class FaceModel(nn.Module):
    """Base class of every registered detector.

    Subclasses set the class attributes below, call ``super().__init__(**config)`` with
    the options they were built with (so a weights file can rebuild them) and implement
    :meth:`forward` and :meth:`anchors`.
    """

    name: str = ""
    paper: str = ""
    input_norm: InputNorm = InputNorm()
    coding: BoxCoding = BoxCoding()
    num_keypoints: int = 0
    fixed_input_size: tuple[int, int] | None = None  # (height, width) where required
    train_input_size: tuple[int, int] = (640, 640)
    suppression: str = "hard"  # "hard" NMS, or "blend" (BlazeFace's weighted NMS)

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self.config: dict[str, Any] = dict(config)

    def anchors(self, height: int, width: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe_anchors(self) -> str:
        """One line on the anchor layout, for the model card."""
        return ""

    def shift_face_logit(self, delta: float) -> None:
        """Add ``delta`` to every face logit the network outputs (a monotone change of the
        score scale: rankings and AP stay as they are). Used to put a trained model's
        operating point at the toolkit's common threshold (:mod:`facespot.train.calibrate`);
        families implement it on their classification bias."""
        raise NotImplementedError(f"{type(self).__name__} cannot shift its face logit")

    def preprocess(self, images_rgb_uint8: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, 3)`` uint8 RGB -> normalised ``(B, 3, H, W)`` float input."""
        x = images_rgb_uint8.permute(0, 3, 1, 2).float()
        if self.input_norm.channel_order == "BGR":
            x = x.flip(1)
        mean = torch.tensor(self.input_norm.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.input_norm.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std
