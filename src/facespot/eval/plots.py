"""PR curves (WIDER FACE easy / medium / hard) and FDDB ROC curves as image files.

Uses matplotlib's object API with the Agg canvas, never ``pyplot``: it needs no display,
does not change the process-wide backend, and leaks no global figures in long runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from facespot.errors import FacespotError
from facespot.eval.fddb import FddbRocResult
from facespot.eval.wider import WiderEvalResult
from facespot.files import write_atomically

PLOT_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def check_plot_path(path: str | Path) -> None:
    """A plot name needs an extension matplotlib can write (checked before any work)."""
    if Path(path).suffix.lower() not in PLOT_FORMATS:
        raise FacespotError(f"{path}: a plot needs one of the extensions {', '.join(PLOT_FORMATS)}")


def _save(fig, path: str | Path) -> Path:
    """Write the figure atomically; a bad name or an unwritable place is one clear error."""
    check_plot_path(path)
    suffix = Path(path).suffix.lower()
    return write_atomically(path, lambda tmp: fig.savefig(tmp, format=suffix.lstrip(".")), suffix=suffix)


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_wider_pr(results: Mapping[str, WiderEvalResult] | WiderEvalResult, path: str | Path, title: str = "WIDER FACE val") -> Path:
    """One panel per setting, one curve per method, legend ``"<method> (AP 0.912)"``.

    ``results`` is a single result or ``{method name: result}`` to compare detectors.
    """
    if isinstance(results, WiderEvalResult):
        results = {"detector": results}
    first = next(iter(results.values()))
    names = list(first.settings)
    fig = _figure(4.2 * len(names), 4.2)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, setting in zip(axes, names):
        for label, res in results.items():
            s = res.settings[setting]
            ok = np.isfinite(s.precision) & np.isfinite(s.recall)
            ap = "n/a" if not np.isfinite(s.ap) else f"{s.ap:.3f}"
            ax.plot(s.recall[ok], s.precision[ok], lw=1.8, label=f"{label} (AP {ap})")
        subset = f", {first.images}/{first.images_total} images" if first.is_subset else ""
        ax.set_title(f"{setting}{subset}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_fddb_roc(results: Mapping[str, FddbRocResult] | FddbRocResult, path: str | Path, max_fp: int = 2000, title: str = "FDDB discrete ROC") -> Path:
    """TPR against false positives (step curve), legend with TPR at ``max_fp``."""
    if isinstance(results, FddbRocResult):
        results = {"detector": results}
    fig = _figure(6, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    for label, res in results.items():
        fp = np.r_[0, res.fp]
        tpr = np.r_[0.0, res.tpr]
        ax.step(fp, tpr, where="post", lw=1.8, label=f"{label} (TPR {res.tpr_at(max_fp):.3f} @ {max_fp} FP)")
    ax.set_xlim(0, max_fp)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positives")
    ax.set_ylabel("true positive rate")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)
