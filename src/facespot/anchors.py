"""Anchor (prior) generators: every anchor layout a facespot model uses, in NumPy.

All anchors are ``(cx, cy, w, h)`` normalised to the network input (see
:mod:`facespot.boxes`). Models call these from ``FaceModel.anchors(height, width)``;
the runtime calls them too, so the ONNX path decodes without the torch graph.
This module imports nothing of facespot's.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------- SSD-style (FaceBoxes, BlazeFace)

# ---------------------------------------------------------------- Tiny Faces templates and grid cells
