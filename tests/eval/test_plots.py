"""Plots: files are written, with one curve per method per setting and AP in the legend."""

from __future__ import annotations

import numpy as np

from facespot.eval.fddb import evaluate_fddb
from facespot.data.records import FaceRecord
from facespot.eval.plots import plot_fddb_roc, plot_wider_pr
from facespot.eval.wider import evaluate_wider

from .helpers import dets, gt_image


def test_wider_pr_plot(tmp_path, monkeypatch):
    gt = [gt_image("e/a", [[0, 0, 40, 40], [100, 0, 40, 40]])]
    good = evaluate_wider(gt, {"e/a": dets([[0, 0, 40, 40, 1.0], [100, 0, 40, 40, 0.0]])})
    bad = evaluate_wider(gt, {"e/a": dets([[500, 500, 40, 40, 1.0], [0, 0, 40, 40, 0.0]])})
    labels = []
    from matplotlib.axes import Axes

    orig = Axes.plot

    def spy(self, *a, **k):
        labels.append(k.get("label"))
        return orig(self, *a, **k)

    monkeypatch.setattr(Axes, "plot", spy)
    path = plot_wider_pr({"good": good, "bad": bad}, tmp_path / "sub" / "pr.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert labels == ["good (AP 1.000)", "bad (AP 0.250)"] * 3  # FP then A of 2 faces: R 1/2 at P 1/2


def test_fddb_roc_plot(tmp_path):
    r = evaluate_fddb([FaceRecord("x.jpg", np.array([[0, 0, 10, 10]]), name="x")], {"x": np.array([[0, 0, 10, 10, 1.0]])})
    path = plot_fddb_roc(r, tmp_path / "roc.png", max_fp=10)
    assert path.stat().st_size > 5_000
