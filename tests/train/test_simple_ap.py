"""VOC-style AP against hand-worked cases."""

import math

import numpy as np

from facespot.data.records import FaceRecord
from facespot.eval.simple_ap import average_precision, evaluate_ap


def test_perfect_and_empty():
    r = [FaceRecord("a.jpg", [[0, 0, 10, 10], [20, 20, 30, 30]])]
    pred = {"a": (np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0.9, 0.8]))}
    assert math.isclose(evaluate_ap(r, pred).ap, 1.0)
    assert evaluate_ap(r, {}).ap == 0.0


def test_hand_computed_ap():
    # 2 faces; ranked detections: TP (0.9), FP (0.8), TP (0.7)
    # recall/precision: (0.5, 1), (0.5, 0.5), (1, 2/3) -> AP = 0.5*1 + 0.5*2/3
    r = [FaceRecord("a.jpg", [[0, 0, 10, 10], [20, 20, 30, 30]])]
    pb = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [21, 21, 30, 30]], np.float32)
    res = evaluate_ap(r, {"a": (pb, np.array([0.9, 0.8, 0.7]))})
    assert math.isclose(res.ap, 0.5 + 0.5 * 2 / 3, rel_tol=1e-6)
    # a duplicate of an already-taken face is a false positive
    pb2 = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    assert math.isclose(evaluate_ap(r, {"a": (pb2, np.array([0.9, 0.8]))}).ap, 0.5)


def test_difficult_faces_are_ignored():
    r = [FaceRecord("a.jpg", [[0, 0, 10, 10], [20, 20, 30, 30]], attributes={"difficult": np.array([0, 1])})]
    pb = np.array([[20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    res = evaluate_ap(r, {"a": (pb, np.array([0.9, 0.5]))})
    assert res.num_faces == 1 and res.num_detections == 1 and math.isclose(res.ap, 1.0)


def test_envelope():
    assert math.isclose(average_precision(np.array([0.5, 1.0]), np.array([0.5, 1.0])), 1.0)
