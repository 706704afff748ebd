"""Detection at scale on Ray Data (the optional extra ``pip install "facespot[ray]"``).

``facespot detect|blur SOURCE --engine ray`` (:mod:`.run`) and :func:`detect_dataset` run the
ordinary :mod:`facespot.runtime` detector inside a Ray Data actor pool (:mod:`.worker`); Ray
schedules, batches, retries and applies back-pressure -- nothing here does its own
scheduling. Importing this package does not import Ray; ``import facespot`` never imports
this package.
"""

from __future__ import annotations

__all__ = ["detect_dataset"]


def __getattr__(name: str):
    if name == "detect_dataset":
        from facespot.distributed.dataset import detect_dataset

        return detect_dataset
    raise AttributeError(f"module 'facespot.distributed' has no attribute {name!r}")
