"""Feature extractors shared by the detectors: ResNet, pool-ResNet, MobileNetV2, MobileNetV3.

Every backbone is a :class:`Backbone`: ``forward(x)`` returns a list of stage outputs with
``.strides`` and ``.channels`` describing them. ``build_backbone(name, **options)`` picks
one by name, so model configs can name their backbone as a string. No pretrained weights
are shipped or downloaded: facespot trains from scratch (or from its own weight files).
"""

from __future__ import annotations

from typing import Any, Callable

from facespot.models.backbones.base import Backbone
from facespot.models.backbones.mobilenet_v2 import mobilenet_v2
from facespot.models.backbones.mobilenet_v3 import mobilenet_v3, mobilenet_v3_large, mobilenet_v3_small
from facespot.models.backbones.resnet import pool_resnet, resnet, resnet18, resnet34, resnet50, resnet101

BACKBONES: dict[str, Callable[..., Backbone]] = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "pool_resnet": pool_resnet,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3": mobilenet_v3_large,
    "mobilenet_v3_large": mobilenet_v3_large,
    "mobilenet_v3_small": mobilenet_v3_small,
}


def build_backbone(name: str, **options: Any) -> Backbone:
    """Backbone by name; ValueError naming the known ones for an unknown name."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name](**options)


__all__ = [
    "BACKBONES",
    "Backbone",
    "build_backbone",
    "mobilenet_v2",
    "mobilenet_v3",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "pool_resnet",
    "resnet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
]
