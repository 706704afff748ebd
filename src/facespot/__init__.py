"""facespot: train, evaluate and run face detectors.

Quick start::

    import facespot
    detector = facespot.load("weights.safetensors")   # or "model.onnx", or "default"
    faces = detector(cv2.imread("photo.jpg"))          # BGR arrays by default; rgb=True for RGB
    for face in faces:
        print(face.box, face.score)

``load``, ``Detector`` and ``Face`` are imported lazily, so ``import facespot`` stays light
(no torch, no ONNX Runtime until a detector is built).
"""

from facespot.errors import FacespotError

__version__ = "0.1.0"

__all__ = ["Detector", "Face", "FacespotError", "__version__", "load"]

_LAZY = {"load": "facespot.runtime.detector", "Detector": "facespot.runtime.detector", "Face": "facespot.runtime.detector"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'facespot' has no attribute {name!r}")
