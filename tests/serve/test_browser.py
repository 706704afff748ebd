"""The web page in a real browser: Debian's Chromium, headless, driven over the DevTools protocol.

Uploads the fixture photos through the page's file input, waits for the boxes, checks the face
counts shown against the hand labels, the drawn boxes, the threshold slider, the blur toggle
and the download; saves screenshots as test artefacts (``build/test-artifacts/serve/`` or
``$FACESPOT_TEST_ARTIFACTS/serve/``). Skipped only when no Chromium is installed.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from facespot.runtime.packaged import read_manifest

from .cdp import Browser, find_chromium
from .conftest import ARTIFACTS, LABELS, PHOTOS, require_serve_extra, serve_process

require_serve_extra()

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (bash .ci/run installs it with apt when root)")

NAMES = ["astronaut.jpg", "cameraman.jpg", "grace_hopper.jpg", "rocket.jpg"]

CARDS = """[...document.querySelectorAll('.card')].map(c => ({
  name: c.querySelector('.name').textContent, state: c.dataset.state, faces: Number(c.dataset.faces),
  count: c.querySelector('.count').textContent, note: c.querySelector('.note').textContent}))"""

# Green (the box colour) pixels in a 7-pixel band around the middle of each shown box's left edge.
BOX_PIXELS = """photos.map(p => {
  const ctx = p.canvas.getContext('2d'), t = parseFloat(document.getElementById('threshold').value);
  return p.faces.filter(f => f.score >= t).map(f => {
    const [x1, y1, x2, y2] = f.box, d = ctx.getImageData(Math.round(x1) - 3, Math.round((y1 + y2) / 2), 7, 1).data;
    let green = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 1] > d[i] + 60 && d[i + 1] > d[i + 2] + 30) green++;
    return green; });
})"""


def set_control(page, selector: str, js: str) -> None:
    page.evaluate(f"(() => {{ const e = document.querySelector('{selector}'); {js}; }})()")


def test_page_detects_blurs_and_downloads_in_chromium(live_server, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(CHROMIUM, log=ARTIFACTS / "chromium.log") as browser:
        page = browser.new_page(1400, 1000)
        browser.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
        page.send("Page.navigate", url=live_server.url)
        page.wait_for("document.body && document.body.dataset.ready === '1'", what="the page to load /healthz")
        manifest = read_manifest()
        assert manifest["models"][manifest["default"]]["model"] in page.evaluate("document.getElementById('footer').textContent")

        # choose the photos, wait for the boxes
        page.set_files("#files", [PHOTOS / n for n in NAMES])
        page.wait_for(f"document.querySelectorAll('.card[data-state=done]').length === {len(NAMES)}", 60, "all photos detected")
        shot = page.screenshot(ARTIFACTS / "serve_page.png")
        assert shot.stat().st_size > 50_000
        cards = {c["name"]: c for c in page.evaluate(CARDS)}
        assert sorted(cards) == sorted(NAMES)
        for name, card in cards.items():
            n = len(LABELS[name])
            assert card["faces"] == n, (name, card)
            assert card["count"] == f"{n} face{'' if n == 1 else 's'}"
        total = sum(len(LABELS[n]) for n in NAMES)
        assert page.evaluate("document.getElementById('summary').textContent") == f"{len(NAMES)} photos · {total} faces"
        drawn = [g for per_photo in page.evaluate(BOX_PIXELS) for g in per_photo]
        assert len(drawn) == total and all(g >= 2 for g in drawn), drawn  # every shown box has its outline

        # the threshold slider filters locally: more boxes at 0.1, back at 0.5, no new detection calls
        set_control(page, "#threshold", "e.value = '0.1'; e.dispatchEvent(new Event('input'))")
        low = int(page.evaluate("document.getElementById('summary').dataset.faces"))
        assert low >= total
        set_control(page, "#threshold", "e.value = '0.5'; e.dispatchEvent(new Event('input'))")
        assert int(page.evaluate("document.getElementById('summary').dataset.faces")) == total

        # the blur toggle: the server blurs every photo; then download the blurred astronaut
        set_control(page, "#blur", "e.click()")
        page.wait_for(f"[...document.querySelectorAll('.card .note')].filter(n => n.textContent === 'blurred').length === {len(NAMES)}", 60, "blurred photos")
        page.screenshot(ARTIFACTS / "serve_page_blurred.png")
        page.evaluate("[...document.querySelectorAll('.card')].find(c => c.querySelector('.name').textContent === 'astronaut.jpg').querySelector('.download').click()")
        target = downloads / "astronaut_blurred.jpg"
        deadline = time.monotonic() + 30
        while not (target.exists() and target.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert target.exists(), list(downloads.iterdir())
        time.sleep(0.2)
        out = cv2.imread(str(target)).astype(int)
        src = cv2.imread(str(PHOTOS / "astronaut.jpg")).astype(int)
        assert out.shape == src.shape
        assert np.abs(out[90:160, 195:255] - src[90:160, 195:255]).mean() > 8  # the face is blurred
        assert np.abs(out[300:, :] - src[300:, :]).mean() < 2  # the rest is the photo

        # everything came from this server; nothing failed in the page
        urls = [e["request"]["url"] for e in page.events("Network.requestWillBeSent")]
        foreign = [u for u in urls if not u.startswith((live_server.url, "blob:", "data:"))]
        assert not foreign, foreign
        assert sum("/v1/detect" in u for u in urls) == len(NAMES)
        assert not page.events("Runtime.exceptionThrown")
        errors = [e["entry"] for e in page.events("Log.entryAdded") if e["entry"]["level"] == "error"]
        assert not errors, errors


def test_a_tiff_the_browser_cannot_decode_is_shown_detected_and_blurred(live_server, tmp_path):
    """Chromium decodes no TIFF: the server converts it for the page, which shows it upright with
    its face, blurs it, and downloads the blurred photo as TIFF (issue 20, item 11)."""
    from PIL import Image

    from facespot.images import read_image

    upright = cv2.imread(str(PHOTOS / "grace_hopper.jpg"))
    photo = tmp_path / "phone.tiff"
    Image.fromarray(np.ascontiguousarray(np.rot90(upright[:, :, ::-1], 1))).save(photo, tiffinfo={274: 6})  # stored sideways
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(CHROMIUM, log=ARTIFACTS / "chromium_tiff.log") as browser:
        page = browser.new_page(1000, 800)
        browser.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
        page.send("Page.navigate", url=live_server.url)
        page.wait_for("document.body && document.body.dataset.ready === '1'", what="the page")
        page.set_files("#files", [photo])
        page.wait_for("document.querySelectorAll('.card[data-state=done], .card[data-state=error]').length === 1", 60, "the TIFF")
        (card,) = page.evaluate(CARDS)
        assert card["state"] == "done" and card["faces"] == 1, card
        assert page.evaluate("[photos[0].canvas.width, photos[0].canvas.height]") == [512, 600]  # shown upright
        set_control(page, "#blur", "e.click()")
        page.wait_for("document.querySelector('.card .note').textContent === 'blurred'", 60, "the blurred TIFF")
        page.screenshot(ARTIFACTS / "serve_page_tiff.png")
        page.evaluate("document.querySelector('.card .download').click()")
        target = downloads / "phone_blurred.tiff"
        deadline = time.monotonic() + 30
        while not (target.exists() and target.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert target.exists(), list(downloads.iterdir())
        time.sleep(0.2)
        out = read_image(target)[:, :, ::-1].astype(int)
        assert out.shape == upright.shape
        assert np.abs(out[:60] - upright[:60]).mean() < 1 and np.abs(out - upright).mean() > 1  # upright, a face blurred
        urls = [e["request"]["url"] for e in page.events("Network.requestWillBeSent")]
        assert sum("/v1/convert" in u for u in urls) == 1
        assert not page.events("Runtime.exceptionThrown")


def test_webcam_frames_go_to_the_server(live_server):
    """Chromium's fake camera (a moving test pattern, no faces): frames are sent and drawn."""
    fake_camera = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    with Browser(CHROMIUM, log=ARTIFACTS / "chromium_webcam.log", extra_flags=fake_camera) as browser:
        page = browser.new_page(1000, 700)
        page.send("Page.navigate", url=live_server.url)
        page.wait_for("document.body && document.body.dataset.ready === '1'", what="the page")
        set_control(page, "#webcam", "e.click()")
        page.wait_for("document.getElementById('webcam').textContent === 'Stop webcam'", 20, "the webcam to start")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sent = [e for e in page.events("Network.requestWillBeSent") if "/v1/detect" in e["request"]["url"]]
            if len(sent) >= 3:
                break
            time.sleep(0.2)
        assert len(sent) >= 3  # frame after frame
        card = page.evaluate("(() => { const c = document.querySelector('.card'); return [c.querySelector('.name').textContent, c.querySelector('.count').textContent, c.querySelector('canvas').width]; })()")
        assert card[0] == "webcam" and card[1] == "0 faces" and card[2] > 0
        assert not page.evaluate("document.getElementById('message').textContent")
        page.screenshot(ARTIFACTS / "serve_page_webcam.png")
        set_control(page, "#webcam", "e.click()")
        page.wait_for("document.querySelectorAll('.card').length === 0", 10, "the webcam to stop")


def test_threshold_slider_starts_at_the_servers_threshold(tmp_path):
    """The slider starts where /healthz says the server's /v1/detect threshold is (not a fixed
    0.5), so the page shows the faces the API returns by default."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serve_process(tmp_path / "server.log", "--workers", "1", "--threshold", "0.42") as server:
        with Browser(CHROMIUM, log=ARTIFACTS / "chromium_threshold.log") as browser:
            page = browser.new_page(1000, 700)
            page.send("Page.navigate", url=server.url)
            page.wait_for("document.body && document.body.dataset.ready === '1'", what="the page to load /healthz")
            assert page.evaluate("document.getElementById('threshold').value") == "0.42"
            assert page.evaluate("document.getElementById('thresholdValue').textContent") == "0.42"
            assert not page.events("Runtime.exceptionThrown")
