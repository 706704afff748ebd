"""Model families behind one registry: ``facespot.models.build(name, **options)``."""

from importlib import import_module

from facespot.models.base import BoxCoding, FaceModel, InputNorm, ModelCard, decode_outputs
from facespot.models.registry import available, build, register

# Importing a family module registers its models.
for _family in ("faceboxes", "blazeface", "tinyfaces", "grid", "yolo", "spotnet"):
    import_module(f"facespot.models.{_family}")

__all__ = ["BoxCoding", "FaceModel", "InputNorm", "ModelCard", "available", "build", "decode_outputs", "register"]
