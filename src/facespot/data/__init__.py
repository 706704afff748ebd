"""Data sets: parsers for common face annotation formats, datasets and augmentation."""

from facespot.data.records import FaceRecord

__all__ = ["FaceRecord"]
