"""Running detectors: preprocessing, backends, decoding to faces (grows with issue 5)."""
