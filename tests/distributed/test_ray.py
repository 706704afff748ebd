"""``--engine ray`` and ``detect_dataset`` on a local Ray (2 CPUs) against the local run.

One Ray session for the module (starting Ray costs seconds); every run's outputs are compared
with the local run's on the same inputs: ~24 real photos made from the four fixture photos
(crops, flips, rescales, a PNG and a grey copy) plus a truncated JPEG and a text file, and a
short video whose segments are decoded by different actors after a seek. Skipped when the
``ray`` extra is not installed.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("ray")
pytest.importorskip("ray.data")

import ray  # noqa: E402

import facespot  # noqa: E402
from facespot.cli import main  # noqa: E402
from facespot.runtime.json_lines import settings_path  # noqa: E402

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
NAMES = ("astronaut", "cameraman", "grace_hopper", "rocket")
RAY = ["--engine", "ray", "--actors", "2", "--batch-size", "4"]
# Ray Data reads its own deprecated settings when it ships its context to the workers
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One small local Ray for the module: 2 CPUs, a 200 MB object store, no dashboard."""
    ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, logging_level=logging.ERROR,
             log_to_driver=False)  # fmt: skip
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """24 real photos in a folder and a sub-folder, a truncated JPEG and a non-image."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for name in NAMES:
        img = cv2.imread(str(PHOTOS / f"{name}.jpg"))
        h, w = img.shape[:2]
        variants = {
            f"{name}.jpg": img,
            f"sub/{name}_flip.jpg": img[:, ::-1],
            f"{name}_small.jpg": cv2.resize(img, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA),
            f"sub/{name}_crop.jpg": img[h // 8 :, w // 10 : w - w // 12],
            f"{name}_big.png": cv2.resize(img, None, fx=1.3, fy=1.3, interpolation=cv2.INTER_LINEAR),
            f"sub/{name}_grey.jpg": cv2.cvtColor(img, cv2.COLOR_BGR2GRAY),
        }
        for rel, pixels in variants.items():
            assert cv2.imwrite(str(root / rel), np.ascontiguousarray(pixels))
    (root / "broken.jpg").write_bytes((PHOTOS / "astronaut.jpg").read_bytes()[:4000])  # truncated
    (root / "notes.txt").write_text("not a photo\n")
    return root


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_detect_folder_same_outputs_as_local(photos, tmp_path, capsys):
    local, dist = tmp_path / "local", tmp_path / "ray"
    for out, extra in ((local, []), (dist, RAY)):
        rc = main(["detect", str(photos), "--json", str(out / "faces.jsonl"), "--save", str(out / "saved"),
                   "--wider-out", str(out / "wider"), *extra])  # fmt: skip
        assert rc == 0
    report = capsys.readouterr().out
    assert (dist / "faces.jsonl").read_bytes() == (local / "faces.jsonl").read_bytes()  # same faces, same order
    lines = _lines(dist / "faces.jsonl")
    assert len(lines) == 25 and sum(len(x.get("faces", [])) for x in lines) >= 12
    broken = [x for x in lines if "error" in x]
    assert [x["source"] for x in broken] == ["broken.jpg"] and "truncated JPEG" in broken[0]["error"]
    assert "broken.jpg: truncated JPEG" in report.split("ray:")[0].split("detect:")[-1]  # reported in the ray run too
    assert "2 actor(s) x 1 thread(s)" in report
    assert _tree(dist / "saved") == _tree(local / "saved") and len(_tree(dist / "saved")) == 24
    assert _tree(dist / "wider") == _tree(local / "wider") and len(_tree(dist / "wider")) == 24


def test_blur_same_outputs_as_local(photos, tmp_path):
    for out, extra in ((tmp_path / "local", []), (tmp_path / "ray", RAY)):
        assert main(["blur", str(photos), "--out", str(out), "--method", "pixelate", *extra]) == 0
    assert _tree(tmp_path / "ray") == _tree(tmp_path / "local") and len(_tree(tmp_path / "ray")) == 24


def test_resume_skips_sources_already_done(photos, tmp_path, capsys):
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    assert main(["detect", str(photos), "--json", str(full)]) == 0
    lines = full.read_text().splitlines(keepends=True)
    error_line = next(x for x in lines if '"error"' in x)
    kept = [x for x in lines[:10] if x != error_line]
    part.write_text("".join(kept) + error_line + lines[12][:40])  # a run killed mid-line, after an error line
    shutil.copy(settings_path(full), settings_path(part))  # recorded when that run started
    capsys.readouterr()
    assert main(["detect", str(photos), "--json", str(part), "--resume", *RAY]) == 0
    out = capsys.readouterr().out
    assert f"resumed: {len(kept)} image(s)" in out
    assert f"detect: {24 - len(kept)} image(s)" in out  # only the rest ran (and broken.jpg was tried again)
    got = part.read_text().splitlines(keepends=True)
    assert got[: len(kept)] == kept and sorted(got) == sorted(lines)  # every source once, none lost, none twice
    # the settings are the local run's: a resume with another threshold is refused, before Ray starts
    assert main(["detect", str(photos), "--json", str(part), "--resume", "--threshold", "0.3", *RAY]) == 2
    assert "--threshold 0.5 (this run: 0.3)" in capsys.readouterr().err


def test_video_segments_same_as_local(tmp_path):
    """A 30-frame MP4 cut in segments of 4 frames: each actor seeks to its segment; the JSON
    lines and the annotated video equal the local run's, frame for frame."""
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (256, 192))
    assert writer.isOpened()
    frames = [cv2.resize(cv2.imread(str(PHOTOS / f"{n}.jpg")), (256, 192)) for n in NAMES]
    for i in range(30):
        writer.write(np.roll(frames[(i // 8) % 4], 5 * i, axis=1))
    writer.release()
    for out, extra in ((tmp_path / "local", []), (tmp_path / "ray", RAY)):
        assert main(["detect", str(video), "--json", str(out / "f.jsonl"), "--save", str(out / "f.avi"), *extra]) == 0
    lines = _lines(tmp_path / "ray" / "f.jsonl")
    assert [x["frame"] for x in lines] == list(range(30)) and sum(len(x["faces"]) for x in lines) >= 10
    assert (tmp_path / "ray" / "f.jsonl").read_bytes() == (tmp_path / "local" / "f.jsonl").read_bytes()
    assert (tmp_path / "ray" / "f.avi").read_bytes() == (tmp_path / "local" / "f.avi").read_bytes()


def test_blur_video_tracks_across_segments_as_locally(tmp_path):
    """Blur with tracking on a video cut into 4-frame segments: the driver tracks faces across
    the segments' boundaries on the frames the actors decode and detect, so the Ray output
    exposes no more than the local one: the same pixels, the same audio, H.264. Also with
    --detect-every 2 (the actors skip the frames the local run skips)."""
    av = pytest.importorskip("av")
    from fractions import Fraction

    from facespot.runtime.video_io import probe

    video = tmp_path / "clip.mp4"
    frames = [cv2.resize(cv2.imread(str(PHOTOS / f"{n}.jpg")), (256, 192))[:, :, ::-1] for n in NAMES]
    with av.open(str(video), "w") as c:
        v = c.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 256, 192, "yuv420p"
        a = c.add_stream("aac", rate=48000)
        for i in range(30):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(frames[(i // 10) % 4], 4 * i, axis=1)), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 10)
            c.mux(v.encode(f))
        c.mux(v.encode(None))
        for k in range(0, 144000, 1024):  # 3 s of silence-free tone
            wave = (0.2 * np.sin(2 * np.pi * 440 * np.arange(k, min(k + 1024, 144000)) / 48000)).astype(np.float32)[None]
            af = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 48000, k, Fraction(1, 48000)
            c.mux(a.encode(af))
        c.mux(a.encode(None))

    def decoded(path):
        with av.open(str(path)) as c:
            return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]

    for extra in ([], ["--detect-every", "2"]):
        for out, engine in ((tmp_path / "local.mp4", []), (tmp_path / "ray.mp4", RAY)):
            assert main(["blur", str(video), "--out", str(out), "--no-progress", *extra, *engine]) == 0
        local, remote = decoded(tmp_path / "local.mp4"), decoded(tmp_path / "ray.mp4")
        assert len(local) == len(remote) == 30
        assert all(np.array_equal(x, y) for x, y in zip(local, remote)), extra
        src = decoded(video)
        assert sum(not np.array_equal(x, y) for x, y in zip(src, local)) >= 10  # faces were blurred
        info = probe(tmp_path / "ray.mp4")
        assert info["video"]["codec"] == "h264" and abs(info["audio"]["duration"] - probe(video)["audio"]["duration"]) < 1e-3


def test_detect_dataset_paths_and_arrays(photos):
    """The notebook entry: a ``faces`` column equal to ``facespot.load`` on each image (keypoints
    too), an ``error`` column for the truncated file; image arrays as well as paths."""
    from facespot.distributed import detect_dataset
    from facespot.images import read_image

    paths = sorted(str(p) for p in photos.rglob("*.jpg"))[:8]
    assert any(p.endswith("broken.jpg") for p in paths)
    rows = detect_dataset(ray.data.from_items([{"path": p} for p in paths]), model="blazeface-front", actors=2,
                          batch_size=3).take_all()  # fmt: skip
    assert [r["path"] for r in sorted(rows, key=lambda r: r["path"])] == paths
    det = facespot.load("blazeface-front", rgb=True)
    for r in rows:
        if r["path"].endswith("broken.jpg"):
            assert "truncated JPEG" in r["error"] and len(r["faces"]) == 0
            continue
        want = det(read_image(r["path"]))
        assert r["error"] == "" and len(r["faces"]) == len(want)
        for got, face in zip(r["faces"], want):
            assert tuple(got["box"]) == face.box and got["score"] == face.score
            np.testing.assert_array_equal(np.asarray(got["keypoints"], np.float32), face.keypoints)
    good = [p for p in paths if "broken" not in p][:3]
    arrays = ray.data.from_items([{"image": read_image(p), "name": Path(p).name} for p in good])
    rows = detect_dataset(arrays, threshold=0.6, actors=1).take_all()
    default = facespot.load(rgb=True, threshold=0.6)
    assert {r["name"]: [f["score"] for f in r["faces"]] for r in rows} == {
        Path(p).name: [f.score for f in default(read_image(p))] for p in good
    }
