"""facespot: train, evaluate and run face detectors.

Quick start::

    import facespot
    detector = facespot.load("weights.safetensors")   # or "model.onnx", or "default"
    faces = detector(cv2.imread("photo.jpg"))          # BGR arrays by default; rgb=True for RGB
    for face in faces:
        print(face.box, face.score)

``facespot.align(image, face)`` gives the 112x112 ArcFace crop of a face from its 5 landmarks.
``load``, ``Detector``, ``Face`` and ``align`` are imported lazily, so ``import facespot`` stays light
(no torch, no ONNX Runtime until a detector is built).
"""

import os as _os

from facespot.errors import FacespotError

# PyTorch's CPU thread pool is GNU OpenMP, whose idle threads busy-wait ("spin") for a while
# after every parallel region. When the cores are shared (a training job, a browser, a
# container's CPU quota), the spinning threads take the time slices the computation needs:
# the torch backend ran ~10x slower on the main thread of a busy 2-core machine (1.3 s vs
# 0.1 s per image; a worker thread escaped only because libgomp shortens the spin once it
# manages more threads than there are CPUs). Passive waiting wakes idle threads through the
# kernel instead (microseconds per operator). libgomp reads this when torch loads, so it is set here, before
# any facespot module imports torch; an explicit OMP_WAIT_POLICY in the environment wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

__all__ = ["Detector", "Face", "FacespotError", "__version__", "align", "load"]

_LAZY = {"load": "facespot.runtime.detector", "Detector": "facespot.runtime.detector", "Face": "facespot.runtime.detector",
         "align": "facespot.runtime.align"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'facespot' has no attribute {name!r}")
