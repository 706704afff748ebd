"""Recall by face size and precision at one threshold, against hand-counted cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from facespot.data.records import FaceRecord
from facespot.eval.operating_point import operating_point


def _rec(name, boxes, invalid=None):
    attrs = {"invalid": np.asarray(invalid, np.int64)} if invalid is not None else {}
    return FaceRecord(Path(f"/x/{name}.jpg"), np.asarray(boxes, np.float32), attributes=attrs, name=name)


def test_recall_by_height_and_precision_are_hand_counted():
    # image a: faces 10, 20 and 40 px high (the 20-px one marked invalid); image b: a 30-px face.
    a = _rec("a", [[0, 0, 10, 10], [50, 50, 70, 70], [100, 100, 140, 140]], invalid=[0, 1, 0])
    b = _rec("b", [[0, 0, 30, 30]])
    preds = {
        "a": (np.array([[0, 0, 10, 10], [50, 50, 70, 70], [100, 100, 140, 140], [300, 300, 330, 330]]),
              np.array([0.9, 0.8, 0.3, 0.7])),  # 10 px found, invalid one found (ignored), 40 px below 0.5, a false one
        "b": (np.array([[1, 0, 30, 30]]), np.array([0.6])),  # IoU 29/30: found
    }  # fmt: skip
    op = operating_point([a, b], preds, 0.5)
    # counted detections at >= 0.5: the 10-px face (true), the false one, b's face (true); the invalid one is neither
    assert (op.detections, op.true_detections) == (3, 2)
    assert op.precision == pytest.approx(2 / 3)
    # real faces >= 16 px: 40 (missed), 30 (found) -> 1/2; >= 32 px: only the 40-px one -> 0
    assert op.faces == {16: 2, 24: 2, 32: 1}
    assert op.recall[16] == pytest.approx(0.5) and op.recall[24] == pytest.approx(0.5) and op.recall[32] == 0.0
    low = operating_point([a, b], preds, 0.2)
    assert low.recall[32] == 1.0 and low.precision == pytest.approx(3 / 4)


def test_nothing_detected_is_nan_precision_and_zero_recall():
    op = operating_point([_rec("a", [[0, 0, 40, 40]])], {}, 0.5)
    assert math.isnan(op.precision) and op.recall[24] == 0.0 and op.detections == 0
    assert "recall of faces" in op.summary()


def test_precision_interval_is_wilsons():
    from facespot.eval.operating_point import OperatingPoint, wilson_interval

    # 50 of 100 at 95% (z 1.96): the textbook 0.4038-0.5962
    lo, hi = wilson_interval(50, 100, 1.96)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    # epoch 60's calibration, 708 true of 744 detections, 90%: 0.937-0.963 by hand
    op = OperatingPoint(0.5, 708 / 744, 744, 708, {24: 0.8}, {24: 100})
    lo, hi = op.precision_interval()
    assert lo == pytest.approx(0.9370, abs=2e-4) and hi == pytest.approx(0.9630, abs=2e-4)
    assert "90% interval 0.937-0.963; 744 detections" in op.summary()
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(0, 10)[0] == 0.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_a_wider_prediction_folder_gives_the_same_operating_point(tmp_path):
    """What `facespot detect --wider-out` writes (x y w h score per line) reads back as the boxes it came from."""
    from facespot.data.predictions import write_wider_predictions
    from facespot.eval.operating_point import wider_folder_operating_point

    a = _rec("0--E/a", [[0, 0, 10, 10], [100, 100, 140, 140]])
    b = _rec("0--E/b", [[0, 0, 30, 30]])
    det = {"0--E/a": np.array([[0, 0, 10, 10, 0.9], [300, 300, 330, 330, 0.7], [100, 100, 140, 140, 0.3]]),
           "0--E/b": np.array([[1, 0, 30, 30, 0.6]]), "9--Other/c": np.array([[0, 0, 5, 5, 0.9]])}  # fmt: skip
    write_wider_predictions(tmp_path, det)
    got = wider_folder_operating_point([a, b], tmp_path, 0.5)
    want = operating_point([a, b], {k: (v[:, :4], v[:, 4]) for k, v in det.items()}, 0.5)
    assert got == want and (got.detections, got.true_detections) == (3, 2)
