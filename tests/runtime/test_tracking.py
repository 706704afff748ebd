"""Faces tracked across video frames (issue 21): a face stays covered through missed
detections, from a few frames before its first detection, never across a shot change; the
same tracker gives `detect --json` a stable id per face; blur's operating point is the packaged
model's measured one, or the documented fallback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facespot.runtime.tracking import CoverPlanner, FaceTracker, TrackSettings, frame_signature, is_cut


class F:
    def __init__(self, box, score=0.9):
        self.box, self.score = tuple(float(v) for v in box), score


def face_at(i: int) -> tuple[float, float, float, float]:
    """A 40x50 face moving right 12 px per frame (a third of its width)."""
    return (100 + 12 * i, 200.0, 140 + 12 * i, 250.0)


def covered(boxes, box, need: float = 0.9) -> bool:
    """The middle of ``box`` (its central half) lies at least ``need`` inside the union of ``boxes``."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    mx1, my1, mx2, my2 = int(x1 + w / 4), int(y1 + h / 4), int(x2 - w / 4), int(y2 - h / 4)
    mask = np.zeros((720, 1280), bool)
    for b in boxes:
        a, b_, c, d = (int(round(v)) for v in b)
        mask[max(b_, 0) : max(d, 0), max(a, 0) : max(c, 0)] = True
    return mask[my1:my2, mx1:mx2].mean() >= need


def run_planner(planner: CoverPlanner, detections: list, signatures=None) -> dict[int, list]:
    out = {}
    for i, faces in enumerate(detections):
        for item, boxes in planner.push(i, faces, None if signatures is None else signatures[i]):
            out[item] = boxes
    for item, boxes in planner.finish():
        out[item] = boxes
    return out


SIG_A = np.tile(np.arange(32, dtype=np.uint8) * 8, (18, 1))
SIG_B = SIG_A[:, ::-1].copy()


def test_a_missed_face_stays_covered():
    """Detected on frames 0-5 and 9-14, missed on 6-8: the held, predicted box covers it there."""
    dets = [[F(face_at(i))] if not 6 <= i <= 8 else [] for i in range(15)]
    plan = run_planner(CoverPlanner(TrackSettings(threshold=0.5, hold=4, lookback=4)), dets)
    assert sorted(plan) == list(range(15))  # every frame released once, in full
    for i in range(15):
        assert covered(plan[i], face_at(i)), i
    frame_by_frame = run_planner(CoverPlanner(TrackSettings(threshold=0.5, hold=0, hold_new=0, lookback=0)), dets)
    assert not any(covered(frame_by_frame[i], face_at(i)) for i in (6, 7, 8))  # without tracking: exposed


def test_a_face_is_covered_before_its_first_detection():
    """The face is there from frame 0 but found only from frame 5: once confirmed, frames 1-4
    (lookback 4) are covered too; frame 0 (5 frames back) is not."""
    dets = [[F(face_at(i))] if i >= 5 else [] for i in range(12)]
    plan = run_planner(CoverPlanner(TrackSettings(threshold=0.5, hold=4, lookback=4)), dets)
    assert [covered(plan[i], face_at(i), 0.6) for i in range(5)] == [False, True, True, True, True]
    assert all(covered(plan[i], face_at(i)) for i in range(5, 12))


def test_weak_detections_continue_a_track_but_do_not_start_one():
    dets = [[F(face_at(i), 0.9 if i < 3 else 0.3)] for i in range(8)] + [[F((600, 300, 640, 350), 0.3)]]
    plan = run_planner(CoverPlanner(TrackSettings(threshold=0.5, keep=0.25, hold=2, lookback=0)), dets)
    assert all(covered(plan[i], face_at(i)) for i in range(8))
    assert plan[8] == [] or not covered(plan[8], (600, 300, 640, 350))


def test_one_off_detections_are_held_briefly():
    """A box seen once (most are not faces) is held hold_new frames, not hold."""
    dets = [[F((500, 100, 540, 150))]] + [[] for _ in range(9)]
    plan = run_planner(CoverPlanner(TrackSettings(threshold=0.5, hold=6, hold_new=1, lookback=2)), dets)
    assert [len(plan[i]) for i in range(10)] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]


def test_a_shot_change_resets_the_tracks():
    """A held face never leaks into the next shot, and lookback never reaches back across it."""
    assert is_cut(SIG_A, SIG_B, 0.1) and not is_cut(SIG_A, np.roll(SIG_A, 1, axis=1), 0.1)
    dets = [[F(face_at(i))] for i in range(5)] + [[] for _ in range(3)] + [[F((700, 300, 740, 350))] for _ in range(4)]
    sigs = [SIG_A] * 5 + [SIG_B] * 7
    new_face = (700, 300, 740, 350)
    plan = run_planner(CoverPlanner(TrackSettings(threshold=0.5, hold=6, lookback=6)), dets, sigs)
    assert not any(covered(plan[i], face_at(i), 0.1) for i in (5, 6, 7))  # the old shot's face is gone
    assert all(covered(plan[i], new_face) for i in range(5, 12))  # the new one: from the cut on (lookback)
    assert not any(covered(plan[i], new_face, 0.1) for i in range(5))  # never before it
    without_cut = run_planner(CoverPlanner(TrackSettings(threshold=0.5, hold=6, lookback=6)), dets)
    assert all(covered(without_cut[i], face_at(i)) for i in (5, 6, 7))
    assert covered(without_cut[4], new_face)


def test_detect_every_k_frames_keeps_faces_covered_between():
    planner = CoverPlanner(TrackSettings(threshold=0.5, every=3, hold=4, lookback=3))
    ran, plan = [], {}
    for i in range(13):
        faces = None
        if planner.needs_detection(i):
            ran.append(i)
            faces = [F(face_at(i))]
        for item, boxes in planner.push(i, faces):
            plan[item] = boxes
    plan.update(dict(planner.finish()))
    assert ran == [0, 3, 6, 9, 12]
    assert all(covered(plan[i], face_at(i), 0.8) for i in range(13)), [i for i in range(13) if not covered(plan[i], face_at(i), 0.8)]


def test_track_ids_are_stable_and_fast_faces_are_followed():
    """Two faces in a fast pan (each moves more than its width per frame: IoU 0) keep their ids."""
    tracker = FaceTracker(TrackSettings(threshold=0.5))
    ids = []
    for i in range(10):
        step = tracker.update(i, [F((50 + 45 * i, 100, 90 + 45 * i, 150)), F((400 + 45 * i, 300, 440 + 45 * i, 350))])
        ids.append(sorted((face.box[1], track.id) for face, track in step.matched))
    assert all(x == ids[0] for x in ids) and len({t for _, t in ids[0]}) == 2


def test_bad_settings_are_one_line_errors():
    from facespot.errors import FacespotError

    for bad in (dict(every=0), dict(hold=-1), dict(keep=0.9, threshold=0.5), dict(threshold=1.5), dict(gate=0)):
        with pytest.raises(FacespotError):
            TrackSettings(**bad).check()


def test_signature_is_a_small_thumbnail():
    img = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    sig = frame_signature(img)
    assert sig.shape == (18, 32) and sig.dtype == np.uint8
    assert not is_cut(sig, frame_signature(img), 0.1)


# ---------------------------------------------------------------------------- the pipeline


class Stub:
    """A detector that finds the moving face except on the frames in ``miss``."""

    def __init__(self, miss=()):
        self.miss = set(miss)
        self.calls = 0

    def __call__(self, image, rgb=True):
        from facespot.runtime.detector import Face

        i = self.calls
        self.calls += 1
        return [] if i in self.miss else [Face(face_at(i), 0.9)]


def _textured_video(path: Path, n: int) -> Path:
    from facespot.runtime.video_io import VideoWriter

    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    with VideoWriter(path, 25, (640, 360)) as w:
        for _ in range(n):
            w.write(base)
    return path


def _grey_frames(path: Path) -> list[np.ndarray]:
    import av
    import cv2

    with av.open(str(path)) as c:
        return [cv2.cvtColor(f.to_ndarray(format="rgb24"), cv2.COLOR_RGB2GRAY).astype(np.float32) for f in c.decode(video=0)]


def _detail_kept(a: np.ndarray, b: np.ndarray, box) -> float:
    import cv2

    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    sl = (slice(int(y1 + h / 4), int(y2 - h / 4)), slice(int(x1 + w / 4), int(x2 - w / 4)))
    da, db = a - cv2.GaussianBlur(a, (0, 0), 1.0), b - cv2.GaussianBlur(b, (0, 0), 1.0)
    return float((da[sl] * db[sl]).sum() / (da[sl] ** 2).sum())


def test_blur_keeps_a_missed_face_blurred_in_the_output_video(tmp_path):
    """The whole pipeline, real encoder: frames where the detector misses the face are still
    blurred (tracking on), and exposed frame by frame (--no-track)."""
    from facespot.runtime.pipeline import BlurOutputs, run_source
    from facespot.runtime.sources import open_source

    src = _textured_video(tmp_path / "in.mp4", 16)
    miss = (5, 6, 7, 11)
    for track in (True, False):
        out = tmp_path / f"out_{track}.mp4"
        handle = BlurOutputs("gaussian", 0.2, TrackSettings(threshold=0.5, hold=4, lookback=4), track=track)
        report = run_source(open_source(src), Stub(miss), handle, out, progress=False, desc="blur")
        assert report.processed == 16
        a, b = _grey_frames(src), _grey_frames(out)
        assert len(b) == 16
        kept = [_detail_kept(a[i], b[i], face_at(i)) for i in range(16)]
        if track:
            assert max(kept) < 0.1, kept
        else:
            assert all(kept[i] > 0.5 for i in miss) and all(kept[i] < 0.1 for i in range(16) if i not in miss), kept


def test_detect_every_runs_the_detector_on_every_kth_frame(tmp_path):
    from facespot.runtime.pipeline import BlurOutputs, run_source
    from facespot.runtime.sources import open_source

    src = _textured_video(tmp_path / "in.mp4", 12)
    stub = Stub()
    calls = []

    def detector(image, rgb=True):
        calls.append(1)
        from facespot.runtime.detector import Face

        return [Face(face_at(stub.calls + 2 * (len(calls) - 1)), 0.9)]

    handle = BlurOutputs("gaussian", 0.2, TrackSettings(threshold=0.5, every=3, hold=4, lookback=3))
    run_source(open_source(src), detector, handle, tmp_path / "out.mp4", progress=False, desc="blur")
    assert len(calls) == 4  # frames 0, 3, 6, 9


def test_detect_json_carries_a_track_id_per_face(tmp_path):
    from facespot.runtime.pipeline import DetectOutputs, run_source
    from facespot.runtime.sources import open_source

    src = _textured_video(tmp_path / "in.mp4", 10)
    js = tmp_path / "f.jsonl"
    with open(js, "w") as f:
        run_source(open_source(src), Stub(miss=(4,)), DetectOutputs(f, None, False, 0.5, 0.02, "video"), None, progress=False)
    rows = [json.loads(x) for x in js.read_text().splitlines()]
    tracks = [face["track"] for r in rows for face in r["faces"]]
    assert len(tracks) == 9 and set(tracks) == {1}  # one face, one id, through the missed frame


# ---------------------------------------------------------------------------- operating point


def _package(tmp_path, monkeypatch, blur):
    import sys

    pkg = tmp_path / "fake_weights"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    entry = {"file": "m.safetensors", "sha256": "a" * 64, "model": "spotnet_s"}
    if blur is not None:
        entry["blur"] = blur
    (pkg / "manifest.json").write_text(json.dumps({"format": 1, "default": "m", "models": {"m": entry}}))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("fake_weights", None)
    monkeypatch.setattr("facespot.runtime.packaged.PACKAGE", "fake_weights")


def test_blur_operating_point_comes_from_the_manifest_and_falls_back(tmp_path, monkeypatch):
    from facespot.runtime import tracking

    _package(tmp_path, monkeypatch, {"threshold": 0.22, "keep": 0.11, "sizes": [[24, 0.1]], "sha256": "a" * 64})
    settings, origin = tracking.blur_settings("default")
    assert (settings.threshold, settings.sizes, origin) == (0.22, ((24.0, 0.1),), "measured")
    assert settings.start((0, 0, 20, 20)) == 0.1 and settings.start((0, 0, 30, 30)) == 0.22
    assert settings.low == pytest.approx(0.05)  # the keep ratio (1/2) applies to every size
    assert tracking.blur_settings("some/file.onnx")[1] == "fallback"


def test_blur_margin_comes_with_the_operating_point(tmp_path, monkeypatch):
    """The thresholds were measured with a margin: blur covers with that one unless given another;
    a point without one, or none at all, covers with the documented 0.2."""
    from facespot.errors import FacespotError
    from facespot.runtime import tracking
    from facespot.runtime.pipeline import blur_outputs

    _package(tmp_path, monkeypatch, {"threshold": 0.22, "keep": 0.11, "margin": 0.1, "sha256": "a" * 64})
    assert tracking.blur_margin("default") == 0.1 and tracking.blur_margin("default", 0.3) == 0.3
    assert tracking.blur_margin("some/file.onnx") == 0.2
    handle, note = blur_outputs("default", "gaussian")
    assert handle.margin == 0.1 and "grown 0.1 per side" in note
    assert blur_outputs("default", "gaussian", 0.0)[0].margin == 0.0
    with pytest.raises(FacespotError, match="between 0 and 2"):
        tracking.blur_margin("default", 2.5)
    (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    _package(tmp_path / "b", monkeypatch, {"threshold": 0.22, "keep": 0.11, "sha256": "a" * 64})
    assert tracking.blur_margin("default") == 0.2 and tracking.blur_settings("default")[1] == "measured"
    _package(tmp_path / "c", monkeypatch, {"threshold": 0.22, "keep": 0.11, "margin": -1, "sha256": "a" * 64})
    assert tracking.blur_settings("default")[1] == "fallback" and tracking.blur_margin("default") == 0.2  # a bad entry counts for nothing


def test_a_stale_operating_point_is_not_used(tmp_path, monkeypatch):
    """Measured for other weights (the hash differs): the fallback, until measured again."""
    from facespot.runtime import tracking

    _package(tmp_path, monkeypatch, {"threshold": 0.22, "keep": 0.11, "sha256": "b" * 64})
    settings, origin = tracking.blur_settings("default")
    assert origin == "fallback" and settings == tracking.FALLBACK


def test_blur_cli_options_override_and_are_checked(tmp_path, capsys):
    from facespot.cli import main
    from facespot.runtime.pipeline import blur_outputs

    handle, note = blur_outputs("default", "gaussian", 0.2, threshold=0.1)
    assert handle.settings.threshold == 0.1 and handle.settings.low <= 0.1 and "(given)" in note
    photo = Path(__file__).resolve().parents[1] / "fixtures" / "photos" / "astronaut.jpg"
    assert main(["blur", str(photo), "--out", str(tmp_path / "x.jpg"), "--detect-every", "0"]) == 2
    assert "k >= 1" in capsys.readouterr().err
    assert main(["blur", str(photo), "--out", str(tmp_path / "x.jpg"), "--detect-every", "2", "--no-track"]) == 2
    assert "needs tracking" in capsys.readouterr().err
