"""Loss functions against hand-computed values."""

import math

import torch
import torch.nn.functional as F

from facespot.train.losses import focal_loss, hard_negative_mask, multibox_loss, tiny_loss, yolo_loss
from facespot.train.targets import Targets


def _targets(labels, boxes=None):
    labels = torch.tensor(labels)
    b, a = labels.shape
    boxes = torch.zeros(b, a, 4) if boxes is None else boxes
    return Targets(labels, boxes, torch.zeros(b, a, 4))


def test_ohem_picks_exactly_3p_hardest_negatives():
    # image 0: 1 positive, 6 negatives, 1 ignored -> 3 hardest negatives
    # image 1: 2 positives, 3 negatives -> all 3 (capped by availability)
    labels = torch.tensor([[1, 0, 0, 0, 0, 0, 0, -1], [1, 1, 0, 0, 0, -1, -1, -1]])
    loss = torch.tensor([[9.0, 0.1, 5.0, 0.3, 4.0, 0.2, 7.0, 99.0], [0, 0, 1.0, 2.0, 3.0, 50, 50, 50]])
    m = hard_negative_mask(loss, labels, 3.0)
    assert torch.nonzero(m[0]).flatten().tolist() == [2, 4, 6]
    assert torch.nonzero(m[1]).flatten().tolist() == [2, 3, 4]
    # no positives -> no negatives unless min_neg asks for some
    z = torch.tensor([[0, 0, 0, 0]])
    assert hard_negative_mask(torch.tensor([[1.0, 3.0, 2.0, 0.0]]), z, 3.0).sum() == 0
    assert torch.nonzero(hard_negative_mask(torch.tensor([[1.0, 3.0, 2.0, 0.0]]), z, 3.0, min_neg=2)[0]).flatten().tolist() == [1, 2]


def test_multibox_value_by_hand():
    # 1 positive with logit 0 (BCE = ln 2) and box error 0.5 in one coord (smooth-L1 = 0.125);
    # negatives with logits [2, -1, 0.5, -3]: 3 hardest are 2, 0.5, -1.
    labels = [[1, 0, 0, 0, 0]]
    logits = torch.tensor([[0.0, 2.0, -1.0, 0.5, -3.0]])
    deltas = torch.zeros(1, 5, 4)
    deltas[0, 0, 0] = 0.5
    out = multibox_loss(deltas, logits, _targets(labels))
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    cls = math.log(2) + sp(2.0) + sp(0.5) + sp(-1.0)
    assert math.isclose(out.terms["cls"], cls, rel_tol=1e-5)
    assert math.isclose(out.terms["box"], 0.125, rel_tol=1e-5)
    assert math.isclose(float(out.total), cls + 0.125, rel_tol=1e-5)
    assert out.num_positive == 1


def test_landmark_term_only_on_valid_points():
    labels = torch.tensor([[1, 0]])
    t = _targets(labels.tolist())
    t.points = torch.zeros(1, 2, 2, 2)
    t.point_mask = torch.tensor([[[True, False], [False, False]]])
    pts = torch.zeros(1, 2, 2, 2)
    pts[0, 0, 0] = torch.tensor([2.0, 0.0])  # smooth-L1: 1.5 + 0
    pts[0, 0, 1] = torch.tensor([100.0, 100.0])  # missing point: must not count
    out = multibox_loss(torch.zeros(1, 2, 4), torch.zeros(1, 2), t, pts, landmark_weight=2.0)
    assert math.isclose(out.terms["landmark"], 1.5, rel_tol=1e-6)
    assert math.isclose(float(out.total), out.terms["cls"] + 2 * 1.5, rel_tol=1e-5)


def test_focal_matches_formula_and_skips_ignored():
    x = torch.tensor([1.0])
    p = 1 / (1 + math.exp(-1))
    assert math.isclose(float(focal_loss(x, torch.tensor([1.0]))), 0.25 * (1 - p) ** 2 * -math.log(p), rel_tol=1e-5)
    assert math.isclose(float(focal_loss(x, torch.tensor([0.0]))), 0.75 * p**2 * -math.log(1 - p), rel_tol=1e-5)
    out = multibox_loss(torch.zeros(1, 3, 4), torch.tensor([[1.0, 1.0, 50.0]]), _targets([[1, 0, -1]]), focal=True)
    want = float(focal_loss(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0])).sum())
    assert math.isclose(out.terms["cls"], want, rel_tol=1e-5)


def test_yolo_loss_by_hand():
    # one image, two predictors: #0 responsible, #1 empty
    labels = [[1, 0]]
    tb = torch.zeros(1, 2, 4)
    tb[0, 0] = torch.tensor([0.5, 0.5, 0.25, 0.04])
    deltas = torch.zeros(1, 2, 4)  # sigmoid -> 0.5 everywhere
    logits = torch.tensor([[0.0, 0.0]])  # conf 0.5
    out = yolo_loss(deltas, logits, _targets(labels, tb), lambda_coord=5.0, lambda_noobj=0.5)
    coord = 0 + 0 + (math.sqrt(0.5) - 0.5) ** 2 + (math.sqrt(0.5) - 0.2) ** 2
    want = 5 * coord + 0.25 + 0.5 * 0.25
    assert math.isclose(float(out.total), want, rel_tol=1e-5)


def test_tiny_loss_balances_sample():
    labels = torch.zeros(1, 1000, dtype=torch.long)
    labels[0, :3] = 1
    logits = torch.zeros(1, 1000)
    logits[0, 3:] = -20.0  # easy negatives
    g = torch.Generator().manual_seed(0)
    out = tiny_loss(torch.zeros(1, 1000, 4), logits, _targets(labels.tolist()), samples_per_image=8, generator=g)
    # sample = 3 positives (BCE ln2 each) + 5 negatives (~softplus(-20) each), averaged over 8
    want = (3 * math.log(2) + 5 * F.softplus(torch.tensor(-20.0)).item()) / 8
    assert math.isclose(out.terms["cls"], want, rel_tol=1e-4)
    assert out.num_positive == 3


def test_gradients_flow():
    deltas = torch.randn(2, 6, 4, requires_grad=True)
    logits = torch.randn(2, 6, requires_grad=True)
    t = _targets([[1, 0, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0]])
    multibox_loss(deltas, logits, t).total.backward()
    assert deltas.grad[0, 0].abs().sum() > 0 and deltas.grad[0, 1].abs().sum() == 0
    assert logits.grad.abs().sum() > 0


# ---------------------------------------------------------------- quality focal + GIoU (SpotNet)

from facespot.train.losses import giou, quality_loss  # noqa: E402


def test_giou_by_hand():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 0.0, 3.0, 2.0]])  # overlap 2, union 6, hull 6
    iou, g = giou(a, b)
    assert math.isclose(float(iou), 1 / 3, rel_tol=1e-6) and math.isclose(float(g), 1 / 3, rel_tol=1e-6)
    c = torch.tensor([[4.0, 0.0, 6.0, 2.0]])  # disjoint: IoU 0, hull 12, union 8 -> GIoU -1/3
    iou, g = giou(a, c)
    assert float(iou) == 0 and math.isclose(float(g), -1 / 3, rel_tol=1e-6)


def test_quality_loss_target_is_the_iou_and_perfect_boxes_cost_nothing():
    from facespot import boxes as B

    anchors = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1], [0.8, 0.8, 0.1, 0.1]])
    face = torch.tensor([[0.42, 0.4, 0.6, 0.62]])
    labels = torch.tensor([[1, 0, -1]])
    gt = torch.zeros(1, 3, 4)
    gt[0, 0] = face[0]
    enc = torch.zeros(1, 3, 4)
    enc[0, 0] = B.encode(face, anchors[:1], (0.1, 0.2))[0]
    t = Targets(labels, enc, gt)
    # perfect box: GIoU loss 0; the positive's score target is 1, so a confident logit costs ~0
    logits = torch.tensor([[12.0, -12.0, 5.0]])  # the ignored anchor's logit does not count
    out = quality_loss(enc.clone(), logits, t, anchors)
    assert out.terms["box"] < 1e-5 and out.terms["cls"] < 1e-4 and out.num_positive == 1
    # zero deltas: the box is the anchor; the score target becomes IoU(anchor, face)
    iou = float(B.iou(B.cxcywh_to_xyxy(anchors[:1]), face)[0, 0])
    logit = math.log(iou / (1 - iou))  # predicting exactly the quality: no focal weight left
    out = quality_loss(torch.zeros(1, 3, 4), torch.tensor([[logit, -12.0, 0.0]]), t, anchors)
    assert out.terms["cls"] < 1e-4
    _, g = giou(B.cxcywh_to_xyxy(anchors[:1]), face)
    assert math.isclose(out.terms["box"], float(1 - g), rel_tol=1e-5)
    # a background anchor scoring high is punished
    worse = quality_loss(torch.zeros(1, 3, 4), torch.tensor([[logit, 3.0, 0.0]]), t, anchors)
    assert worse.terms["cls"] > 1.0
