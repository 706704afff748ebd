"""benchmarks/latency.py --rounds: the summary a release's latency numbers come from."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "latency.py"


@pytest.fixture(scope="module")
def latency():
    spec = importlib.util.spec_from_file_location("latency_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(model, ms, threads=1, venv=None):
    r = {"model": model, "backend": "onnxruntime", "threads": threads, "median_ms": ms}
    if venv:
        r["venv"] = venv
    return r


def test_medians_and_side_by_side_ratios(latency):
    rounds = [
        [row("default", 10.0), row("RetinaFace", 20.0, venv="retinaface"), row("default", 6.0, threads=2)],
        [row("default", 14.0), row("RetinaFace", 20.0, venv="retinaface"), row("default", 7.0, threads=2)],
        [row("default", 12.0), row("RetinaFace", 30.0, venv="retinaface"), row("default", 5.0, threads=2)],
    ]
    got = {(r["model"], r["threads"]): r for r in latency.summarize_rounds(rounds)}
    d = got[("default", 1)]
    assert (d["median_ms"], d["min_ms"], d["max_ms"], d["rounds"]) == (12.0, 10.0, 14.0, 3)
    # ratios per round: 0.5, 0.7, 0.4 -> median 0.5 (not 12 / 20 = 0.6, the ratio of the medians)
    assert d["x_retinaface"] == pytest.approx(0.5)
    assert got[("RetinaFace", 1)]["x_retinaface"] == pytest.approx(1.0)
    # no RetinaFace timed at 2 threads: no ratio, not a ratio to the 1-thread time
    assert got[("default", 2)]["x_retinaface"] is None
    assert got[("default", 2)]["median_ms"] == 6.0


def test_rows_keep_first_seen_order(latency):
    rounds = [[row("b", 1.0), row("a", 2.0)], [row("a", 2.0), row("b", 1.0)]]
    assert [r["model"] for r in latency.summarize_rounds(rounds)] == ["b", "a"]
