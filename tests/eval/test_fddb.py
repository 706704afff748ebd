"""FDDB discrete ROC on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from facespot.data.records import FaceRecord
from facespot.errors import FacespotError
from facespot.eval.fddb import evaluate_fddb, format_fddb_result, image_true_positives


def rec(name, boxes):
    return FaceRecord(image_path=f"/fddb/{name}.jpg", boxes=np.asarray(boxes, dtype=np.float32), name=name)


def test_roc_points_by_hand():
    # img1 faces A, B; img2 face C. Detections by score:
    #   0.9 A (TP) | 0.8 FP | 0.7 C (TP) | 0.4 B (TP) | 0.3 FP
    # cumulative (TP, FP): (1,0) (1,1) (2,1) (3,1) (3,2)
    recs = [rec("img1", [[0, 0, 10, 10], [50, 0, 60, 10]]), rec("img2", [[0, 0, 20, 20]])]
    d = {
        "img1": np.array([[0, 0, 10, 10, 0.9], [100, 100, 110, 110, 0.8], [51, 0, 61, 10, 0.4]]),
        "img2": np.array([[1, 1, 21, 21, 0.7], [40, 40, 50, 50, 0.3]]),
    }
    r = evaluate_fddb(recs, d, fp_points=(0, 1, 2))
    np.testing.assert_array_equal(r.thresholds, [0.9, 0.8, 0.7, 0.4, 0.3])
    np.testing.assert_array_equal(r.tp, [1, 1, 2, 3, 3])
    np.testing.assert_array_equal(r.fp, [0, 1, 1, 1, 2])
    assert r.tpr_at_fp == {0: pytest.approx(1 / 3), 1: 1.0, 2: 1.0}
    assert (r.faces, r.images, r.detections) == (3, 2, 5)
    assert "1.0000" in format_fddb_result(r)


def test_matching_is_maximum_not_greedy():
    # A = x 0..10, B = x 2..12. d1 (best score) overlaps A 0.905 and B 0.739; d2 overlaps only A
    # (0.667; B 0.43). Greedy "best face first" gives d1->A and leaves d2 unmatched (1 TP);
    # the maximum matching pairs d1->B, d2->A: 2 TPs once both are above the threshold.
    A, B = [0, 0, 10, 10], [2, 0, 12, 10]
    d1, d2 = [0.5, 0, 10.5, 10], [-2, 0, 8, 10]
    gained = image_true_positives(np.array([d1 + [0.9], d2 + [0.5]]), np.array([A, B]))
    np.testing.assert_array_equal(gained, [1, 1])
    r = evaluate_fddb([rec("x", [A, B])], {"x": np.array([d1 + [0.9], d2 + [0.5]])})
    np.testing.assert_array_equal(r.tp, [1, 2])
    np.testing.assert_array_equal(r.fp, [0, 0])


def test_overlap_must_exceed_half_and_duplicates_are_false_positives():
    A = [0, 0, 10, 10]
    # exactly IoU 0.5 (10x5 inside 10x10) is not a match under FDDB's strict "> 0.5"
    r = evaluate_fddb([rec("x", [A])], {"x": np.array([[0, 0, 10, 5, 1.0]])})
    np.testing.assert_array_equal(r.tp, [0])
    # a duplicate of a matched face is a false positive
    r = evaluate_fddb([rec("x", [A])], {"x": np.array([[0, 0, 10, 10, 1.0], [0, 0, 10, 9, 0.5]])})
    np.testing.assert_array_equal((r.tp, r.fp), ([1, 1], [0, 1]))


def test_images_without_detections_count_their_faces_and_ties_enter_together():
    recs = [rec("a", [[0, 0, 10, 10]]), rec("b", [[0, 0, 10, 10]])]
    d = {"a": np.array([[0, 0, 10, 10, 0.5], [30, 30, 40, 40, 0.5]])}  # TP and FP tied
    r = evaluate_fddb(recs, d)
    np.testing.assert_array_equal((r.thresholds, r.tp, r.fp), ([0.5], [1], [1]))
    assert r.tpr[0] == 0.5 and r.tpr_at(0) == 0.0 and r.tpr_at(1) == 0.5


def test_unknown_detection_image_is_an_error():
    with pytest.raises(FacespotError, match=r"not in the FDDB folds, e\.g\. 'zzz' \(fold images are named like 'a'\)"):
        evaluate_fddb([rec("a", [[0, 0, 1, 1]])], {"zzz": np.zeros((0, 5))})
    # names are compared without extension / leading ./
    r = evaluate_fddb([rec("2002/07/19/big/img_1", [[0, 0, 10, 10]])], {"./2002/07/19/big/img_1.jpg": np.array([[0, 0, 10, 10, 1]])})
    assert r.tp[-1] == 1
