"""Score calibration: thresholds from hand-checked numbers, budgets met exactly, the logit shift."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from facespot.data.negatives import synthetic_records
from facespot.data.records import FaceRecord
from facespot.runtime.detector import Face
from facespot.shipping.calibrate import calibrate, check_budgets, count_threshold, logit, precision_threshold, sigmoid

FIX = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "train" / "images" / "0--Synth" / "synth_0.png"


class FakeDetector:
    """Answers from a table by image size, so the test knows every score."""

    def __init__(self, table):
        self.table = table

    def __call__(self, image, rgb=True):
        return [Face(tuple(b), s) for b, s in self.table(image)]


def test_threshold_meets_precision_negatives_and_blanks():
    face = FaceRecord(FIX, [[10, 10, 50, 50], [60, 60, 100, 100]], name="f")
    neg = [FaceRecord(FIX, np.zeros((0, 4)), name=f"n{i}") for i in range(100)]
    blanks = synthetic_records(3)

    def table(image):
        if image.shape[:2] == (256, 256) and calls["n"] == 0:  # the annotated photo (first call)
            calls["n"] += 1
            # scores 0.9 TP, 0.8 FP, 0.7 TP, 0.6 FP -> precision 1, 1/2, 2/3, 2/4
            return [([10, 10, 50, 50], 0.9), ([200, 200, 240, 240], 0.8), ([60, 60, 100, 100], 0.7), ([150, 0, 190, 40], 0.6)]
        if image.shape[:2] == (256, 256):  # face-free photos: 3 of 100 see a face at 0.55, 0.5, 0.45
            calls["n"] += 1
            k = calls["n"] - 2
            return [([0, 0, 30, 30], [0.55, 0.5, 0.45][k])] if k < 3 else []
        return [([0, 0, 10, 10], 0.3)]  # every blank frame: one weak false face

    calls = {"n": 0}
    cal = calibrate(FakeDetector(table), [face], neg, blanks, precision=0.6, max_fp_per_image=0.02)
    # precision by level: 0.9 -> 1, 0.8 -> 1/2, 0.7 -> 2/3, 0.6 -> 2/4; the lowest level meeting 0.6 is 0.7,
    # so the threshold lies halfway (in logit) between 0.7 (admitted) and 0.6 (refused)
    assert cal.precision_threshold == pytest.approx(sigmoid((logit(0.7) + logit(0.6)) / 2))
    # 2 false faces allowed in 100 photos: 0.55 and 0.5 pass, 0.45 not
    assert cal.negatives_threshold == pytest.approx(sigmoid((logit(0.5) + logit(0.45)) / 2))
    assert 0.3 < cal.blank_threshold < 0.32  # no false face at all on blank frames: just above 0.3
    assert cal.threshold == cal.precision_threshold
    assert cal.at_threshold.precision == pytest.approx(2 / 3) and cal.recall_at_threshold == 1.0
    assert cal.fp_per_image_at_threshold == 0.0 and cal.blank_faces_at_threshold == 0
    assert math.isclose(sigmoid(logit(cal.threshold) + cal.logit_shift), 0.5, abs_tol=1e-9)


def test_count_budget_is_met_exactly_in_the_float32_network():
    """The bug of the first calibration: a threshold one float64 ulp above a float32 score is the
    same float32 number, so the boundary false face still counted (4 on 314 photos against 3
    allowed). Thresholds now sit halfway between admitted and refused scores, and the shifted
    float32 scores are counted as the shipped network computes them."""
    rng = np.random.default_rng(0)
    for trial in range(200):
        scores = rng.uniform(0.05, 0.99, size=rng.integers(1, 40)).astype(np.float32)
        if trial % 3 == 0:  # ties at the boundary
            scores[: len(scores) // 2] = scores[0]
        allowed = int(rng.integers(0, 6))
        t = count_threshold(scores, allowed)
        shifted = 1 / (1 + np.exp(-(np.log(scores / (1 - scores)) - np.float32(logit(t))).astype(np.float32)))
        assert int((shifted >= np.float32(0.5)).sum()) <= allowed
        assert int((scores >= t).sum()) <= allowed
        if len(scores) > allowed:  # the lowest such threshold: the next score up would pass
            refused = np.sort(scores)[::-1][allowed]
            above = scores[scores > refused]
            if len(above):
                assert int((scores >= above.min()).sum()) <= allowed and t <= above.min()
    assert count_threshold(np.array([0.9, 0.8], np.float32), 2) == 0.0  # all may pass: no constraint


def test_precision_threshold_handles_ties_and_misses():
    face = FaceRecord(FIX, [[0, 0, 10, 10], [20, 20, 30, 30]], name="f")
    preds = {"f": (np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]]), np.array([0.8, 0.8, 0.4]))}
    # the tied level 0.8 holds one true and one false detection: precision 1/2 there, 2/3 at 0.4
    assert precision_threshold([face], preds, 0.6) == pytest.approx(sigmoid(logit(0.4) - 0.05))
    assert precision_threshold([face], preds, 0.9) == 1.0  # no level reaches it: nothing may pass


def test_check_budgets_names_every_broken_budget():
    face = FaceRecord(FIX, [[10, 10, 50, 50]], name="f")
    neg = [FaceRecord(FIX, np.zeros((0, 4)), name=f"n{i}") for i in range(10)]

    class Det:
        def __call__(self, image, rgb=True):
            if image.shape[:2] == (256, 256):
                return [Face((200, 200, 240, 240), 0.7)]  # a false face everywhere
            return [Face((0, 0, 5, 5), 0.6)]

    got = check_budgets(Det(), [face], neg, synthetic_records(2), precision=0.9, max_fp_per_image=0.1)
    assert not got.ok and len(got.problems) == 3
    assert got.fp_per_image == 1.0 and got.blank_faces == 2 and got.at_threshold.precision == 0.0


@pytest.mark.parametrize("name, options", [
    ("spotnet_n", {}), ("faceboxes", {}), ("tinyfaces", {"backbone": "resnet18"}),
    ("yolo", {"backbone": "pool_resnet", "input_size": 128, "grid_size": 4}), ("grid_mobilenetv2", {"input_size": 128, "grid_size": 4}),
])
def test_logit_shift_moves_every_score_the_same_way(name, options):
    from facespot.models import build

    torch.manual_seed(0)
    m = build(name, **options).eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        before = m(x)[1]
        m.shift_face_logit(-1.5)
        after = m(x)[1]
    assert torch.allclose(after, before - 1.5, atol=1e-5)


def test_group_offsets_put_large_faces_above_tiny_false_ones():
    """20 photos, one 100-px face each, found with logit 0 by a large-anchor group (3); in 10
    of them a 16-px false face scores logit 1 in the smallest group (0). Plainly ranked, AP is
    below 1 in every setting; the chosen offsets must rank every real face first (AP 1)."""
    from facespot.data.wider_mat import SETTINGS, WiderGTImage
    from facespot.shipping.calibrate import choose_group_offsets

    gt, cands = [], {}
    for i in range(20):
        box = np.array([[50.0, 50.0, 150.0, 150.0]])
        gt.append(WiderGTImage("0--Parade", f"p{i}", box, {s: np.array([0]) for s in SETTINGS}))
        rows = [[52, 50, 150, 152, 0.0, 3]]
        if i % 2:
            rows.append([300, 300, 316, 316, 1.0, 0])
        cands[f"0--Parade/p{i}"] = np.array(rows, np.float32)
    got = choose_group_offsets(cands, gt, groups=6)
    assert all(v < 0.9 for v in got.before.values())
    assert all(v == pytest.approx(1.0) for v in got.after.values())
    assert 1.0 + got.offsets[0] < got.offsets[3]  # the false face's logit now below the real faces'
    assert abs(float(got.offsets.mean())) < 1e-6  # the overall level is left to the threshold shift


def test_group_candidates_are_the_detectors_own_boxes_before_nms():
    """The best raw candidate of the packaged default on a portrait is the face it reports:
    same box in image pixels, same score; every candidate carries a valid score group."""
    import facespot
    from facespot.shipping.calibrate import group_candidates

    photo = Path(__file__).resolve().parents[1] / "fixtures" / "photos" / "astronaut.jpg"
    det = facespot.load(score_threshold=0.02)
    cands = group_candidates(det, [FaceRecord(photo, np.zeros((0, 4)), name="astro")])["astro"]
    assert cands.shape[1] == 6 and len(cands) > 1
    assert set(np.unique(cands[:, 5]).astype(int)) <= set(range(6))
    best = cands[np.argmax(cands[:, 4])]
    face = max(det(str(photo)), key=lambda f: f.score)
    np.testing.assert_allclose(best[:4], face.box, atol=0.05)
    assert 1 / (1 + math.exp(-best[4])) == pytest.approx(face.score, abs=1e-4)


def test_recall_offsets_let_small_faces_pass_where_large_false_faces_set_the_bar():
    """10 photos with one 30-px face each, found at logit 0.0 by the small-anchor group 0; 100
    face-free photos, 10 with a large false face at logit 1.0 in group 4. With 1% allowed (one
    false face), plain offsets put the threshold above logit 1.0 and no face passes; lowering
    group 4 (or raising group 0) by more than 1.0 lets all ten through, budgets kept."""
    from facespot.shipping.calibrate import choose_recall_offsets

    faces, face_cands = [], {}
    for i in range(10):
        faces.append(FaceRecord(FIX, [[40, 40, 70, 70]], name=f"f{i}"))
        face_cands[f"f{i}"] = np.array([[40, 41, 70, 70, 0.0, 0]], np.float32)
    neg_cands = {f"n{i}": (np.array([[0, 0, 120, 120, 1.0, 4]], np.float32) if i < 10 else np.zeros((0, 6), np.float32))
                 for i in range(100)}  # fmt: skip
    blank_cands = {"b": np.array([[0, 0, 50, 50, -3.0, 2]], np.float32)}
    got = choose_recall_offsets(faces, face_cands, neg_cands, blank_cands, np.zeros(6), precision=0.95,
                                max_fp_per_image=0.01, min_height=24)  # fmt: skip
    assert got.recall_before == 0.0 and got.recall_after == 1.0
    assert got.offsets[0] - got.offsets[4] > 1.0  # the real faces' group now above the false faces'
    assert abs(float(got.offsets.mean())) < 1e-6
    # and the calibration on those scores admits every face and at most one false face
    z = lambda c: c[:, 4] + got.offsets[c[:, 5].astype(int)]  # noqa: E731
    t = max(count_threshold(sigmoid_all(np.concatenate([z(c) for c in neg_cands.values()])), 1),
            count_threshold(sigmoid_all(z(blank_cands["b"])), 0))  # fmt: skip
    assert all(sigmoid_all(z(c))[0] >= t for c in face_cands.values())


def test_recall_offsets_respect_the_ap_tolerance():
    """The same case with an AP function whose easy AP falls as group 0 rises above group 4: a
    tolerance of 0 forbids every move, so the offsets stay where they started."""
    from facespot.shipping.calibrate import choose_recall_offsets

    faces = [FaceRecord(FIX, [[40, 40, 70, 70]], name="f")]
    face_cands = {"f": np.array([[40, 41, 70, 70, 0.0, 0]], np.float32)}
    neg_cands = {f"n{i}": np.array([[0, 0, 120, 120, 1.0, 4]], np.float32) for i in range(10)}
    start = np.array([0.1, 0.0, 0.0, 0.0, -0.1, 0.0])

    def aps(off):  # easy falls as group 0 leaves its place relative to group 4; medium and hard do not care
        return [1.0 - abs(off[0] - off[4] - 0.2), 0.8, 0.6]

    got = choose_recall_offsets(faces, face_cands, neg_cands, {}, start, aps=aps, ap_tolerance=0.0)
    assert got.recall_after == got.recall_before == 0.0
    np.testing.assert_allclose(got.offsets, start - start.mean(), atol=1e-6)
    assert got.ap_before == pytest.approx([1.0, 0.8, 0.6]) and got.ap_after == pytest.approx([1.0, 0.8, 0.6])
    loose = choose_recall_offsets(faces, face_cands, neg_cands, {}, start, aps=aps, ap_tolerance=2.0)
    assert loose.recall_after == 1.0 and loose.ap_after[0] < 1.0  # allowed to spend AP, it does


def sigmoid_all(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))
