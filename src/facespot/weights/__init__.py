"""Shipped model files (weights + config) live here; see facespot.runtime.packaged."""
