"""What a ``detect`` / ``blur`` run is asked to do, as one picklable object.

The CLI fills a :class:`DetectionSettings` from its options; the local run, the Ray driver and
every Ray actor read it (:mod:`facespot.distributed`), so no layer below the CLI sees an argparse
``Namespace`` and the actors receive plain data. The checks stay where a run first uses a
value (``max_pixels`` when the source opens, ``min_side`` when the detector is built), so a
run's first error is the same for either engine.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facespot.errors import FacespotError

if TYPE_CHECKING:  # pragma: no cover
    from facespot.runtime.detector import Detector
    from facespot.runtime.pipeline import BlurOutputs
    from facespot.runtime.sources import Source


@dataclass(frozen=True)
class BlurSettings:
    """How ``facespot blur`` covers faces and follows them across video frames; None: the
    model's measured operating point and the tracking defaults
    (:func:`facespot.runtime.pipeline.blur_outputs`)."""

    method: str = "gaussian"
    margin: float | None = None
    shape: str = "ellipse"
    track: bool = True
    keep: float | None = None
    hold: int | None = None
    lookback: int | None = None
    every: int | None = None


@dataclass(frozen=True)
class DetectionSettings:
    """The source, the model and every detection option of one run.

    ``threshold`` is the user's minimum face score (None for ``blur``'s measured operating
    point); the detector itself may run lower (``detect --wider-out``, blur's tracks), see
    :meth:`build_detector`. ``resize`` is ``"auto"``, ``"native"`` or a long side as text, as
    given. ``blur`` holds blur's own settings (None for ``detect``).
    """

    source: str
    model: str = "default"
    untrained: bool = False
    backend: str = "onnxruntime"
    threads: int | None = None
    threshold: float | None = 0.5
    nms_iou: float = 0.3
    max_faces: int = 750
    min_size: float = 0.0
    resize: str = "auto"
    max_side: int = 2048
    min_side: int = 640
    multiscale: bool = False
    max_pixels: int | None = None
    max_frames: int | None = None
    progress: bool | None = None
    blur: BlurSettings | None = None

    def open_source(self) -> "Source":
        """The source (image, folder, video or camera), read with these limits."""
        from facespot.images import DEFAULT_MAX_PIXELS
        from facespot.runtime.sources import open_source

        if self.max_pixels is not None and self.max_pixels < 1:  # the first option a run uses
            raise FacespotError(f"--max-pixels must be at least 1, got {self.max_pixels}")
        return open_source(self.source, max_pixels=self.max_pixels or DEFAULT_MAX_PIXELS, max_frames=self.max_frames)

    def build_detector(self, threshold: float) -> "Detector":
        """The detector, running at ``threshold`` (RGB input); a note when its weights are untrained."""
        from facespot.images import DEFAULT_MAX_PIXELS
        from facespot.runtime.detector import load
        from facespot.runtime.progress import ViewProgress

        if self.min_side < 0:
            raise FacespotError(f"--min-side must be 0 (never upscale) or a long side in pixels, got {self.min_side}")
        resize = int(self.resize) if str(self.resize).isdigit() else self.resize
        det = load(
            self.model, backend=self.backend, threads=self.threads, untrained=self.untrained, rgb=True,
            score_threshold=threshold, iou_threshold=self.nms_iou, max_faces=self.max_faces,
            min_face_size=self.min_size, resize=resize, max_side=self.max_side, min_side=self.min_side or None,
            mode="multiscale" if self.multiscale else "single", max_pixels=self.max_pixels or DEFAULT_MAX_PIXELS,
        )  # fmt: skip
        if not det.trained:
            print(f"facespot: note: {det.model_name} runs with UNTRAINED weights; its faces are random", file=sys.stderr)
        if self.multiscale:
            det.on_views = ViewProgress(self.progress)
        return det

    def blur_handle(self) -> "tuple[BlurOutputs, str]":
        """``(handle, note)``: blur's handle for these settings (its operating point checked here)."""
        from facespot.runtime.pipeline import blur_outputs

        b = self.blur or BlurSettings()
        return blur_outputs(
            str(self.model), b.method, b.margin, shape=b.shape, track=b.track, threshold=self.threshold, keep=b.keep, hold=b.hold,
            lookback=b.lookback, every=b.every,
        )  # fmt: skip
