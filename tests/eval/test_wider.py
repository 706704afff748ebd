"""The WIDER FACE protocol on cases small enough to compute by hand.

Scores are chosen so that min-max normalisation is exact (raw 1.0 / 0.5 / 0.0 stay as they are)
and thresholds ``1 - t/1000`` fall cleanly between them.
"""

from __future__ import annotations

import numpy as np
import pytest

from facespot import boxes as B
from facespot.data.wider_mat import SETTINGS
from facespot.errors import FacespotError
from facespot.eval.wider import evaluate_wider, normalize_scores, voc_ap

from .helpers import dets, gt_image

A = [0, 0, 40, 40]
Bx = [100, 0, 40, 40]
FAR = [500, 500, 40, 40]  # overlaps nothing


def one_image(faces, rows, keep=None):
    gt = [gt_image("0--Parade/img", faces, keep)]
    return evaluate_wider(gt, {"0--Parade/img": dets(rows)})


def test_perfect_predictions_give_ap_one():
    r = one_image([A, Bx], [A + [1.0], Bx + [0.0]])
    assert r.ap == {"easy": 1.0, "medium": 1.0, "hard": 1.0}
    s = r.settings["hard"]
    assert s.recall[-1] == 1.0 and np.nanmin(s.precision) == 1.0


def test_false_positive_ranked_first():
    # FP (1.0), A (0.5), B (0.0); 2 faces.
    #   thresholds 0.999..0.501: only FP            -> P 0,   R 0
    #   thresholds 0.500..0.001: FP, A              -> P 1/2, R 1/2
    #   threshold  0.000:        FP, A, B           -> P 2/3, R 1
    # Envelope: P(R<=1) = 2/3 everywhere -> AP = 1/2 * 2/3 + 1/2 * 2/3 = 2/3.
    r = one_image([A, Bx], [FAR + [1.0], A + [0.5], Bx + [0.0]])
    s = r.settings["easy"]
    assert s.ap == pytest.approx(2 / 3, abs=1e-12)
    assert s.thresholds[499] == 0.5 and s.thresholds[-1] == 0.0
    np.testing.assert_allclose(s.precision[[0, 498, 499, 998, 999]], [0, 0, 0.5, 0.5, 2 / 3])
    np.testing.assert_allclose(s.recall[[0, 498, 499, 998, 999]], [0, 0, 0.5, 0.5, 1.0])
    np.testing.assert_array_equal(s.proposals[[0, 499, 999]], [1, 2, 3])


def test_ignored_face_neither_rewarded_nor_penalised():
    # Face I (index 1) is ignored; only A counts (1 face).
    faces, keep = [A, Bx], [0]
    # A detection on I ranked first is simply dropped: AP stays 1 ...
    on_ignored = one_image(faces, [Bx + [1.0], A + [0.0]], keep)
    assert on_ignored.settings["easy"].faces == 1
    assert on_ignored.settings["easy"].ap == 1.0
    # ... it is not a proposal (precision undefined while it is alone above the threshold) ...
    assert on_ignored.settings["easy"].proposals[0] == 0 and np.isnan(on_ignored.settings["easy"].precision[0])
    # ... and missing I costs nothing either.
    assert one_image(faces, [A + [1.0], FAR + [0.0]], keep).settings["easy"].ap == 1.0
    # The same detection on empty background is a false positive: AP 1/2.
    assert one_image(faces, [FAR + [1.0], A + [0.0]], keep).settings["easy"].ap == 0.5
    # When I counts (both faces kept), the detection on it is a true positive.
    assert one_image(faces, [Bx + [1.0], A + [0.0]]).settings["easy"].ap == 1.0


def test_duplicate_detection_is_a_false_positive():
    # A (1.0) -> R 1/2 P 1; duplicate of A (0.5) -> R 1/2 P 1/2; B (0.0) -> R 1 P 2/3.
    # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
    dup = [2, 2, 40, 40]  # IoU with A = 39*39 / (2*41*41 - 39*39) = 0.826
    r = one_image([A, Bx], [A + [1.0], dup + [0.5], Bx + [0.0]])
    assert r.settings["medium"].ap == pytest.approx(5 / 6, abs=1e-12)


def test_detection_only_looks_at_its_best_face():
    # Official rule: a detection is judged against the face it overlaps most, even if that
    # face is already recalled and another face it overlaps >= 0.5 is still free.
    # A = x 0..20, B = x 4..24 (pixel-inclusive). d2 = x 1..21: IoU(A) = 420/462 = 0.91,
    # IoU(B) = 378/504 = 0.75. After d1 recalls A, d2 points at A again -> false positive, B is
    # never recalled: R 1/2 P 1, then R 1/2 P 1/2 -> AP = 1/2 (a "best free face" rule gives 1).
    a, b = [0, 0, 20, 20], [4, 0, 20, 20]
    r = one_image([a, b], [a + [1.0], [1, 0, 20, 20, 0.0]])
    assert r.settings["hard"].ap == 0.5
    assert r.settings["hard"].recall[-1] == 0.5


def test_unmatched_face_halves_recall():
    r = one_image([A, Bx], [A + [1.0], FAR + [0.0]])
    s = r.settings["easy"]
    assert s.recall[-1] == 0.5 and s.ap == 0.5
    # A single detection has constant score: kept at every threshold.
    r = one_image([A, Bx], [A + [0.7]])
    assert r.settings["easy"].ap == 0.5 and r.settings["easy"].recall[0] == 0.5
    assert any("all scores are equal" in n for n in r.notes)


def test_iou_is_pixel_inclusive_like_the_official_tool():
    # GT 10x10 at the origin, detection 10x4.8: continuous IoU 48/100 = 0.48 (< 0.5), but the
    # official +1 convention gives 11*5.8 / (11*11) = 0.527 -> matched.
    gt = np.array([[0, 0, 10, 10.0]])
    d = np.array([[0, 0, 10, 4.8]])
    assert B.iou(d, gt)[0, 0] == pytest.approx(0.48)
    assert B.iou(d, gt, pixel_inclusive=True)[0, 0] == pytest.approx(63.8 / 121)
    assert one_image([[0, 0, 10, 10]], [[0, 0, 10, 4.8, 1.0]]).settings["easy"].ap == 1.0
    # and a detection with pixel-inclusive IoU just under 0.5 is a false positive
    assert one_image([[0, 0, 10, 10]], [[0, 0, 10, 4.0, 1.0]]).settings["easy"].ap == 0.0  # 55/121


def test_scores_are_normalised_over_the_whole_set_not_per_image():
    # Image 1: A 0.9 (TP), FP 0.8. Image 2: FP 0.3, B 0.2 (TP). 2 faces.
    # Global order TP, FP, FP, TP: (R 1/2, P 1), (1/2, 1/2), (1/2, 1/3), (1, 1/2)
    # -> AP = 1/2 * 1 + 1/2 * 1/2 = 3/4. (Per-image normalisation would put both FPs level
    # with or above B and give 1/2.)
    gt = [gt_image("e/one", [A]), gt_image("e/two", [Bx])]
    preds = {"e/one": dets([A + [0.9], FAR + [0.8]]), "e/two": dets([FAR + [0.3], Bx + [0.2]])}
    r = evaluate_wider(gt, preds)
    assert r.settings["easy"].ap == pytest.approx(0.75, abs=1e-12)
    # Any increasing affine change of the scores changes nothing.
    scaled = {k: v * [1, 1, 1, 1, 7] + [0, 0, 0, 0, -3] for k, v in preds.items()}
    assert evaluate_wider(gt, scaled).ap == r.ap


def test_unsorted_files_are_sorted_by_score():
    # Same detections written low score first: the official reader sorts them.
    r1 = one_image([A, Bx], [FAR + [1.0], A + [0.5], Bx + [0.0]])
    r2 = one_image([A, Bx], [Bx + [0.0], A + [0.5], FAR + [1.0]])
    assert r1.ap == r2.ap


def test_subset_uses_only_covered_images_and_says_so():
    gt = [gt_image("e/one", [A]), gt_image("e/two", [A, Bx]), gt_image("e/three", [A, Bx, FAR])]
    preds = {"e/one": dets([A + [1.0]]), "e/two": dets([A + [0.5], FAR + [0.0]])}
    r = evaluate_wider(gt, preds)
    assert (r.images, r.images_total, r.is_subset) == (2, 3, True)
    assert (r.settings["easy"].faces, r.settings["easy"].faces_total) == (3, 6)
    # one (1.0) TP, two/A (0.5) TP, FP (0.0): R 1/3 P 1, R 2/3 P 1, R 2/3 P 2/3 -> AP 2/3
    assert r.settings["easy"].ap == pytest.approx(2 / 3, abs=1e-12)
    # Listing all three images: the third has no predictions, so its 3 faces are missed.
    full = evaluate_wider(gt, preds, images=["e/one", "e/two", "e/three"])
    assert (full.images, full.is_subset, full.images_without_predictions) == (3, False, 1)
    assert full.settings["easy"].faces == 6
    assert full.settings["easy"].ap == pytest.approx(2 / 6, abs=1e-12)
    # An image list can also restrict: predictions outside it are not read into the result.
    only_one = evaluate_wider(gt, preds, images=["e/one"])
    assert only_one.ap["easy"] == 1.0 and only_one.predictions == 1


def test_bad_inputs_are_facespot_errors():
    gt = [gt_image("e/one", [A])]
    with pytest.raises(FacespotError, match="not in the ground truth.*'e/nope'"):
        evaluate_wider(gt, {"e/nope": dets([A + [1.0]])})
    with pytest.raises(FacespotError, match="listed image"):
        evaluate_wider(gt, {}, images=["x/y"])
    with pytest.raises(FacespotError, match="no images to evaluate"):
        evaluate_wider(gt, {})


def test_setting_without_counted_faces_has_undefined_ap():
    r = one_image([A], [A + [1.0]], keep={"easy": [], "medium": [0], "hard": [0]})
    assert np.isnan(r.ap["easy"]) and r.ap["medium"] == 1.0
    assert r.to_dict(curves=False)["settings"]["easy"]["ap"] is None


def test_voc_ap_uses_the_precision_envelope_and_skips_nan():
    # Points (R, P): (0, nan), (0.5, 0.5), (0.5, 0.25), (1, 2/3): envelope 2/3 -> AP 2/3.
    assert voc_ap([0, 0.5, 0.5, 1.0], [np.nan, 0.5, 0.25, 2 / 3]) == pytest.approx(2 / 3)
    # Recall stopping at 0.8 with precision 1: the rest of the axis counts 0.
    assert voc_ap([0.4, 0.8], [1.0, 1.0]) == pytest.approx(0.8)


def test_normalize_scores():
    np.testing.assert_allclose(normalize_scores(np.array([2.0, 4.0, 3.0])), [0, 1, 0.5])
    np.testing.assert_array_equal(normalize_scores(np.array([0.3, 0.3])), [1, 1])


# --------------------------------------------------------------------------- reference


def _reference(gt, preds, setting, thresh_num=1000):
    """A literal, loop-by-loop reading of the official evaluation.m (slow, obviously faithful)."""
    scores = [d[:, 4] for d in preds.values() if len(d)]
    allsc = np.concatenate(scores)
    lo, hi = allsc.min(), allsc.max()
    pr = np.zeros((thresh_num, 2))
    count_face = 0
    for g in gt:
        keep = g.keep[setting]
        count_face += len(keep)
        d = preds.get(g.key)
        if d is None or len(d) == 0 or len(g.boxes) == 0:
            continue
        d = d[np.argsort(-d[:, 4], kind="stable")].copy()
        d[:, 4] = (d[:, 4] - lo) / (hi - lo)
        ignore = np.zeros(len(g.boxes))
        ignore[keep] = 1
        recall_list = np.zeros(len(g.boxes))
        proposal = np.ones(len(d))
        pred_recall = np.zeros(len(d))
        for h in range(len(d)):
            ov = []
            for gb in g.boxes:
                iw = min(gb[2], d[h, 2]) - max(gb[0], d[h, 0]) + 1
                ih = min(gb[3], d[h, 3]) - max(gb[1], d[h, 1]) + 1
                if iw <= 0 or ih <= 0:
                    ov.append(0.0)
                    continue
                ua = (gb[2] - gb[0] + 1) * (gb[3] - gb[1] + 1) + (d[h, 2] - d[h, 0] + 1) * (d[h, 3] - d[h, 1] + 1)
                ov.append(iw * ih / (ua - iw * ih))
            idx = int(np.argmax(ov))
            if ov[idx] >= 0.5:
                if ignore[idx] == 0:
                    recall_list[idx] = -1
                    proposal[h] = -1
                elif recall_list[idx] == 0:
                    recall_list[idx] = 1
            pred_recall[h] = np.sum(recall_list == 1)
        for t in range(1, thresh_num + 1):
            thr = 1 - t / thresh_num
            above = np.flatnonzero(d[:, 4] >= thr)
            if len(above):
                r = above[-1]
                pr[t - 1, 0] += np.sum(proposal[: r + 1] == 1)
                pr[t - 1, 1] += pred_recall[r]
    with np.errstate(invalid="ignore"):
        prec = pr[:, 1] / pr[:, 0]
    rec = pr[:, 1] / count_face
    mrec = np.r_[0, rec, 1]
    mpre = np.r_[0, prec, 0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = mpre[i + 1] if np.isnan(mpre[i]) else max(mpre[i], mpre[i + 1])
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]), prec, rec


def test_vectorised_matches_a_literal_loop_implementation():
    rng = np.random.default_rng(7)
    gt, preds = [], {}
    for i in range(25):
        n = int(rng.integers(1, 8))
        xy = rng.uniform(0, 300, (n, 2))
        wh = rng.uniform(8, 60, (n, 2))
        faces = np.c_[xy, wh]
        if i % 5 == 0 and n > 1:
            faces[1] = faces[0] + [3, 2, 0, 0]  # overlapping neighbours exercise the argmax rule
        keep = {s: np.flatnonzero(rng.random(n) < p) for s, p in zip(SETTINGS, (0.3, 0.6, 0.9))}
        gt.append(gt_image(f"ev/img{i}", faces, keep))
        if i % 7 == 3:
            continue  # images without a prediction entry
        hit = faces[rng.random(n) < 0.8]
        jit = hit + rng.normal(0, 3, hit.shape)
        jit[:, 2:] = np.abs(jit[:, 2:]) + 1
        dup = jit[: len(jit) // 2] + rng.normal(0, 2, (len(jit) // 2, 4))
        dup[:, 2:] = np.abs(dup[:, 2:]) + 1
        fp = np.c_[rng.uniform(0, 300, (3, 2)), rng.uniform(5, 50, (3, 2))]
        rows = np.r_[jit, dup, fp]
        score = np.round(rng.random(len(rows)), 2)  # rounding creates ties
        preds[f"ev/img{i}"] = dets(np.c_[rows, score])
    gt.append(gt_image("ev/nofaces", np.zeros((0, 4))))
    preds["ev/nofaces"] = dets([[10, 10, 20, 20, 0.99]])  # skipped, but part of the min-max
    r = evaluate_wider(gt, preds, images=[g.key for g in gt])
    for s in SETTINGS:
        ap, prec, rec = _reference(gt, preds, s)
        assert r.settings[s].ap == pytest.approx(ap, abs=1e-12)
        np.testing.assert_allclose(r.settings[s].precision, prec, atol=1e-12)
        np.testing.assert_allclose(r.settings[s].recall, rec, atol=1e-12)
        assert 0.1 < ap < 0.95  # a non-trivial case
