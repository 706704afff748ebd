"""int8 dynamic quantisation of an exported model (``facespot export --quantize dynamic``).

``onnxruntime.quantization.quantize_dynamic`` stores weights as int8 and quantises
activations on the fly, so it needs no calibration images. Its cost is measured two ways
here, on the same inputs: how far the raw outputs move (:func:`compare_outputs`) and how
much the *faces* move (:func:`compare_faces`: matched IoU and score change). Both are
meaningful only for trained weights; the AP cost on WIDER needs a trained model and
``facespot eval`` on both files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facespot.errors import FacespotError
from facespot.files import write_atomically


def quantize_dynamic_onnx(src: str | Path, dst: str | Path) -> Path:
    """Write an int8 dynamically quantised copy of ``src`` to ``dst`` (metadata kept)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from facespot.runtime.onnx_meta import META_QUANTIZED, add_metadata

    src, dst = Path(src), Path(dst)
    meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}

    def write(tmp: str) -> None:
        logging.disable(logging.WARNING)  # its "consider pre-processing" advice is noise here
        try:
            quantize_dynamic(str(src), tmp, weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        add_metadata(tmp, {**meta, META_QUANTIZED: "dynamic-int8"})

    try:
        write_atomically(dst, write, suffix=".onnx")  # ONNX Runtime's tools want the extension
    except FacespotError:
        raise
    except Exception as exc:
        raise FacespotError(f"{src}: dynamic quantisation failed ({exc})") from None
    return dst


@dataclass
class OutputDiff:
    """Max and mean absolute change of each output, float -> int8."""

    max_abs: dict[str, float]
    mean_abs: dict[str, float]


def compare_outputs(float_path: str | Path, int8_path: str | Path, x: np.ndarray) -> OutputDiff:
    """Run both models on the same ``(B, 3, H, W)`` input and compare output by output."""
    from facespot.runtime.backends import OnnxRuntimeBackend

    a = OnnxRuntimeBackend(float_path, source=str(float_path))
    b = OnnxRuntimeBackend(int8_path, source=str(int8_path))
    ya, yb = a.run(x), b.run(x)
    mx, mn = {}, {}
    for name, u, v in zip(a.output_names, ya, yb):
        d = np.abs(u.astype(np.float64) - v.astype(np.float64))
        mx[name], mn[name] = float(d.max()) if d.size else 0.0, float(d.mean()) if d.size else 0.0
    return OutputDiff(mx, mn)


@dataclass
class FaceDiff:
    """Faces of the float model matched (IoU >= 0.5) to the int8 model's, one image set."""

    float_faces: int
    int8_faces: int
    matched: int
    mean_iou: float
    max_score_change: float


def compare_faces(float_det, int8_det, images: list[np.ndarray]) -> FaceDiff:
    """Detect with both detectors and match faces greedily by IoU."""
    from facespot import boxes as B

    nf = ni = matched = 0
    ious, dscore = [], [0.0]
    for img in images:
        fa, fb = float_det(img, rgb=True), int8_det(img, rgb=True)
        nf, ni = nf + len(fa), ni + len(fb)
        if not fa or not fb:
            continue
        m = B.iou(np.array([f.box for f in fa], np.float32), np.array([f.box for f in fb], np.float32))
        used: set[int] = set()
        for i in range(len(fa)):
            j = int(np.argmax(np.where([k not in used for k in range(len(fb))], m[i], -1)))
            if m[i, j] >= 0.5 and j not in used:
                used.add(j)
                matched += 1
                ious.append(float(m[i, j]))
                dscore.append(abs(fa[i].score - fb[j].score))
    return FaceDiff(nf, ni, matched, float(np.mean(ious)) if ious else float("nan"), float(max(dscore)))
