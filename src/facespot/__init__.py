"""facespot: train, evaluate and run face detectors."""

from facespot.errors import FacespotError

__version__ = "0.1.0"

__all__ = ["FacespotError", "__version__"]
