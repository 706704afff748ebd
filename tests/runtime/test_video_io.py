"""Video out as people expect (issue 21): H.264 in MP4 with the input's audio copied, frame
size, exact rate and duration kept; a video without audio stays without; Ctrl-C / SIGTERM
leave a playable file; the file plays to its end in headless Chromium."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from facespot.cli import main  # noqa: E402
from facespot.runtime.video_io import probe  # noqa: E402

PHOTO = Path(__file__).resolve().parents[1] / "fixtures" / "photos" / "astronaut.jpg"


def make_video(path: Path, n: int = 45, size=(320, 240), rate=Fraction(30000, 1001), audio: str | None = "aac",
               vcodec: str = "libx264") -> Path:  # fmt: skip
    """A test input: moving texture, and (``audio``) a 440 Hz tone as long as the video."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size[1], size[0] * 2, 3), dtype=np.uint8)
    with av.open(str(path), "w") as c:
        v = c.add_stream(vcodec, rate=rate)
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        a = None
        if audio:
            a = c.add_stream(audio, rate=48000)
            a.codec_context.layout = "mono"
        sr, done, total = 48000, 0, int(n / float(rate) * 48000)
        for i in range(n):
            x = (4 * i) % size[0]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, x : x + size[0]]), format="rgb24")
            frame.pts, frame.time_base = i, 1 / rate
            c.mux(v.encode(frame))
            while a is not None and done < min(total, int((i + 1) / float(rate) * sr)):
                k = min(1024, total - done)
                wave = (0.2 * np.sin(2 * np.pi * 440 * np.arange(done, done + k) / sr)).astype(np.float32)[None]
                af = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = sr, done, Fraction(1, sr)
                c.mux(a.encode(af))
                done += k
        c.mux(v.encode(None))
        if a is not None:
            c.mux(a.encode(None))
    return path


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.mark.parametrize("command", ["blur", "detect"])
def test_h264_mp4_with_the_audio_copied(tmp_path, command, capsys):
    src = make_video(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    flag = "--out" if command == "blur" else "--save"
    assert main([command, str(src), flag, str(out), "--no-progress"]) == 0
    a, b = probe(src), probe(out)
    assert b["format"].startswith("mov,mp4")
    assert b["video"]["codec"] == "h264" and b["video"]["pix_fmt"] == "yuv420p" and b["video"]["profile"] == "High"
    assert (b["video"]["width"], b["video"]["height"]) == (320, 240)
    assert b["video"]["rate"] == Fraction(30000, 1001)  # the exact rate, not 29.97
    assert decoded_frames(out) == 45
    assert abs(b["video"]["duration"] - a["video"]["duration"]) < 1e-3
    assert b["audio"]["codec"] == "aac"  # copied, not re-encoded
    assert abs(b["audio"]["duration"] - a["audio"]["duration"]) < 1e-3
    with av.open(str(src)) as ca, av.open(str(out)) as cb:  # the very same audio packets
        pa = [bytes(p) for p in ca.demux(audio=0) if p.size]
        pb = [bytes(p) for p in cb.demux(audio=0) if p.size]
    assert pa == pb


def test_a_video_without_audio_stays_without(tmp_path):
    src = make_video(tmp_path / "in.mp4", n=20, audio=None)
    out = tmp_path / "out.mp4"
    assert main(["blur", str(src), "--out", str(out), "--no-progress"]) == 0
    b = probe(out)
    assert b["audio"] is None and b["video"]["codec"] == "h264" and decoded_frames(out) == 20


def test_audio_an_mp4_cannot_hold_is_reencoded(tmp_path):
    """PCM from a .mov: MP4 has no PCM, so it becomes AAC of the same length (AAC frames: +-25 ms)."""
    src = make_video(tmp_path / "in.mov", n=25, audio="pcm_s16le")
    out = tmp_path / "out.mp4"
    assert main(["blur", str(src), "--out", str(out), "--no-progress"]) == 0
    a, b = probe(src), probe(out)
    assert b["audio"]["codec"] == "aac" and abs(b["audio"]["duration"] - a["audio"]["duration"]) < 0.05


def test_other_containers_and_odd_sizes(tmp_path):
    src = make_video(tmp_path / "in.mp4", n=10, size=(161, 91), audio=None, vcodec="mpeg4")  # odd: padded by one pixel
    for name in ("out.mkv", "out.avi", "out.mov"):
        assert main(["blur", str(src), "--out", str(tmp_path / name), "--no-progress"]) == 0
        v = probe(tmp_path / name)["video"]
        assert v["codec"] == "h264" and (v["width"], v["height"]) == (162, 92) and decoded_frames(tmp_path / name) == 10


@pytest.mark.timeout(240)
@pytest.mark.parametrize("stop, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stopping_leaves_a_playable_h264_file_with_audio(tmp_path, stop, code):
    src = make_video(tmp_path / "in.mp4", n=600, size=(640, 360))
    out = tmp_path / "out.mp4"
    # SIGINT as a terminal gives it, even when the tests run in the background (a shell's `&`
    # starts them with SIGINT ignored, and a child inherits that)
    proc = subprocess.Popen([sys.executable, "-m", "facespot", "blur", str(src), "--out", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.stat().st_size > 50_000:  # some frames are written
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be stopped: {proc.communicate()}"
    proc.send_signal(stop)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code and "Traceback" not in stderr, stderr
    info = probe(out)
    n = decoded_frames(out)
    assert 0 < n < 600 and info["video"]["codec"] == "h264"
    assert info["audio"] is not None and abs(info["audio"]["duration"] - n * 1001 / 30000) < 0.1  # audio stops with the video


# ---------------------------------------------------------------------------- the browser


def _cdp():
    path = Path(__file__).resolve().parents[1] / "serve" / "cdp.py"
    spec = importlib.util.spec_from_file_location("facespot_test_cdp", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.timeout(240)
def test_the_output_plays_to_its_end_in_chromium(tmp_path):
    cdp = _cdp()
    binary = cdp.find_chromium()
    if binary is None:
        pytest.skip("no chromium installed (bash .ci/run installs it with apt when root)")
    src = make_video(tmp_path / "in.mp4", n=30)
    out = tmp_path / "out.mp4"
    assert main(["blur", str(src), "--out", str(out), "--no-progress"]) == 0
    page_file = tmp_path / "play.html"
    page_file.write_text('<!doctype html><video id="v" src="out.mp4" muted playsinline></video>')
    with cdp.Browser(binary, extra_flags=["--autoplay-policy=no-user-gesture-required", "--allow-file-access-from-files"]) as browser:
        page = browser.new_page(800, 600)
        page.send("Page.navigate", url=page_file.as_uri())
        page.wait_for("document.getElementById('v') && document.getElementById('v').readyState >= 1", 60, "the metadata")
        # plays at 4x: the 1-second clip ends within a second or two
        page.evaluate("(() => { const v = document.getElementById('v'); v.playbackRate = 4; v.play(); return true; })()")
        page.wait_for("document.getElementById('v').ended", 60, "the video to reach 'ended'")
        state = page.evaluate("""(() => { const v = document.getElementById('v');
            return {w: v.videoWidth, h: v.videoHeight, d: v.duration, err: v.error && v.error.code,
                    frames: v.getVideoPlaybackQuality().totalVideoFrames,
                    audio: v.webkitAudioDecodedByteCount, h264: v.canPlayType('video/mp4; codecs="avc1.640028"')}; })()""")
    assert state["err"] is None and (state["w"], state["h"]) == (320, 240), state
    assert abs(state["d"] - 30 * 1001 / 30000) < 0.05 and state["frames"] > 0, state
    assert state["h264"] in ("probably", "maybe") and state["audio"] > 0, state  # the AAC track is decoded too
