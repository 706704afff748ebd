"""The HTTP contract of `facespot serve`, in-process: every route and every status code."""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import time

import cv2
import numpy as np
import pytest

import facespot
from facespot.runtime.packaged import read_manifest

from .conftest import LABELS, PHOTOS, BlockingDetector, require_serve_extra
from .helpers import asgi_post, encode, jpeg_with_orientation, multipart, png_bomb_header, stored_for

require_serve_extra()

ASTRONAUT = (PHOTOS / "astronaut.jpg").read_bytes()


def decode(body: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED)


def assert_error(r, status: int, words: str = "") -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    message = r.json()["error"]
    assert isinstance(message, str) and words.lower() in message.lower(), message


# ---------------------------------------------------------------------- 200


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok" and h["version"] == facespot.__version__
    manifest = read_manifest()
    architecture = manifest["models"][manifest["default"]]["model"]  # what the packaged default declares
    assert h["model"] == "default" and h["architecture"] == architecture and h["workers"] == 2 and h["auth"] is False


@pytest.mark.parametrize("name", sorted(LABELS))
def test_detect_multipart_finds_the_labelled_faces(client, name):
    r = client.post("/v1/detect", files={"image": (name, (PHOTOS / name).read_bytes(), "image/jpeg")})
    assert r.status_code == 200, r.text
    body = r.json()
    img = cv2.imread(str(PHOTOS / name), cv2.IMREAD_UNCHANGED)
    assert (body["width"], body["height"]) == (img.shape[1], img.shape[0])
    assert len(body["faces"]) == len(LABELS[name])
    for face, truth in zip(body["faces"], LABELS[name]):
        assert set(face) == {"box", "score", "keypoints"} and 0.5 <= face["score"] <= 1
        x1, y1, x2, y2 = face["box"]
        assert abs((x1 + x2) / 2 - (truth[0] + truth[2]) / 2) < 25 and abs((y1 + y2) / 2 - (truth[1] + truth[3]) / 2) < 25


def test_detect_raw_body_equals_multipart(client):
    raw = client.post("/v1/detect", content=ASTRONAUT, headers={"Content-Type": "image/jpeg"}).json()
    curl_default = client.post("/v1/detect", content=ASTRONAUT, headers={"Content-Type": "application/x-www-form-urlencoded"}).json()
    form = client.post("/v1/detect", files={"image": ("a.jpg", ASTRONAUT)}).json()
    assert raw == form == curl_default and len(raw["faces"]) == 1


def test_detect_query_parameters(client):
    low = client.post("/v1/detect?threshold=0.05", content=ASTRONAUT).json()["faces"]
    assert len(low) > 1 and all(f["score"] >= 0.05 for f in low)
    assert [f["score"] for f in low] == sorted((f["score"] for f in low), reverse=True)
    assert len(client.post("/v1/detect?threshold=0.05&max_faces=2", content=ASTRONAUT).json()["faces"]) == 2
    big = client.post("/v1/detect?threshold=0.05&min_size=60", content=ASTRONAUT).json()["faces"]
    assert len(big) < len(low) and big[0] == low[0]  # the 100-px face stays, small low-score boxes go
    # per-request options never leak into the next request on the same detector
    assert client.post("/v1/detect", content=ASTRONAUT).json()["faces"] == [low[0]]


def test_detect_answers_in_the_displayed_orientation(client):
    upright = cv2.imread(str(PHOTOS / "grace_hopper.jpg"))
    want = client.post("/v1/detect", content=encode(upright, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 98])).json()
    for orientation in (3, 6, 8):
        sideways = jpeg_with_orientation(encode(stored_for(upright, orientation), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 98]), orientation)
        got = client.post("/v1/detect", content=sideways).json()
        assert (got["width"], got["height"]) == (512, 600) == (want["width"], want["height"])
        assert len(got["faces"]) == 1
        assert np.abs(np.subtract(got["faces"][0]["box"], want["faces"][0]["box"])).max() < 8


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_oriented_tiff_is_detected_and_blurred_upright(client, orientation):
    """A TIFF with its own orientation tag (OpenCV's decoder applies it): applied once, not twice."""
    import io

    from PIL import Image

    upright = cv2.imread(str(PHOTOS / "grace_hopper.jpg"))
    want = client.post("/v1/detect", content=encode(upright, ".png")).json()["faces"][0]["box"]
    buf = io.BytesIO()
    Image.fromarray(stored_for(upright[:, :, ::-1], orientation)).save(buf, format="TIFF", tiffinfo={274: orientation})
    got = client.post("/v1/detect", content=buf.getvalue()).json()
    assert (got["width"], got["height"]) == (512, 600) and len(got["faces"]) == 1
    assert np.abs(np.subtract(got["faces"][0]["box"], want)).max() < 3
    r = client.post("/v1/blur", content=buf.getvalue())
    # blurred as the upright photo is (blur's recall-first point may also cover a weak face beside hers)
    same = client.post("/v1/blur", content=encode(upright, ".png"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/tiff" and r.headers["x-faces"] == same.headers["x-faces"] != "0"
    out = decode(r.content).astype(int)
    x1, y1, x2, y2 = (int(v) for v in want)
    face = (slice(y1 + 10, y2 - 10), slice(x1 + 10, x2 - 10))
    assert out.shape == upright.shape and np.abs(out[face] - upright[face]).mean() > 8
    assert np.abs(out - decode(same.content).astype(int)).mean() < 1


def test_convert_and_blur_answer_in_a_format_the_browser_shows(client):
    """TIFF (which browsers cannot decode) comes back as PNG for the page to show (issue 20, item 11)."""
    import io

    from PIL import Image

    upright = cv2.imread(str(PHOTOS / "grace_hopper.jpg"))
    buf = io.BytesIO()
    Image.fromarray(stored_for(upright[:, :, ::-1], 6)).save(buf, format="TIFF", tiffinfo={274: 6})
    tiff = buf.getvalue()
    r = client.post("/v1/convert", content=tiff)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    np.testing.assert_array_equal(decode(r.content), upright)  # upright, lossless
    r = client.post("/v1/convert?format=jpeg", files={"image": ("a.tiff", tiff)})
    assert r.headers["content-type"] == "image/jpeg" and decode(r.content).shape == upright.shape
    shown = client.post("/v1/blur?format=png", content=tiff)
    upright_count = client.post("/v1/blur", content=encode(upright, ".png")).headers["x-faces"]
    assert shown.headers["content-type"] == "image/png" and shown.headers["x-faces"] == upright_count != "0"
    assert decode(shown.content).shape == upright.shape
    kept = client.post("/v1/blur", content=tiff)  # the download: the upload's own format
    assert kept.headers["content-type"] == "image/tiff"
    np.testing.assert_array_equal(decode(kept.content), decode(shown.content))
    bgra = np.dstack([upright, np.full(upright.shape[:2], 200, np.uint8)])
    assert (decode(client.post("/v1/convert", content=encode(bgra, ".tiff")).content)[:, :, 3] == 200).all()  # alpha kept
    assert_error(client.post("/v1/convert?format=tiff", content=tiff), 400, "'format' must be one of png, jpeg, webp")
    assert_error(client.post("/v1/blur?format=gif", content=tiff), 400, "'format'")
    assert_error(client.post("/v1/convert?threshold=0.5", content=tiff), 400, "unknown query parameter")
    assert_error(client.post("/v1/convert", content=b"not an image"), 400)


def test_blur_returns_the_same_format_and_size_with_faces_hidden(client):
    # one threshold: the face alone (the measured operating point also covers a low-score 41-px box)
    r = client.post("/v1/blur?threshold=0.5", files={"image": ("a.jpg", ASTRONAUT)})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.headers["x-faces"] == "1"
    out, src = decode(r.content).astype(int), cv2.imread(str(PHOTOS / "astronaut.jpg")).astype(int)
    assert out.shape == src.shape
    face = (slice(90, 160), slice(195, 255))  # inside the face
    assert np.abs(out[face] - src[face]).mean() > 8  # blurred
    outside = np.ones(src.shape[:2], bool)
    outside[30:230, 140:320] = False  # the face grown by the margin, and some
    assert np.abs(out[outside] - src[outside]).mean() < 2  # untouched but for JPEG re-encoding


def test_blur_methods_and_formats(client):
    src = cv2.imread(str(PHOTOS / "astronaut.jpg"))
    bgra = np.dstack([src, np.full(src.shape[:2], 200, np.uint8)])
    for ext, ctype, channels in ((".png", "image/png", 4), (".webp", "image/webp", 4), (".bmp", "image/bmp", 3)):
        r = client.post("/v1/blur?method=pixelate&margin=0", content=encode(bgra if channels == 4 else src, ext))
        assert r.status_code == 200 and r.headers["content-type"] == ctype, (ext, r.text)
        out = decode(r.content)
        assert out.shape == (512, 512, channels)
        if channels == 4:
            assert (out[:, :, 3] == 200).all()  # alpha kept
    # one threshold for every face size (the default blurs low-score small boxes too: recall first)
    gray = client.post("/v1/blur?threshold=0.4", content=(PHOTOS / "cameraman.jpg").read_bytes())
    assert gray.headers["x-faces"] == "1" and decode(gray.content).shape == (512, 512)
    none = client.post("/v1/blur?threshold=0.4", content=(PHOTOS / "rocket.jpg").read_bytes())
    assert none.headers["x-faces"] == "0" and decode(none.content).shape == (427, 640, 3)


def test_blur_by_default_blurs_what_facespot_blur_blurs_in_a_photo(client, tmp_path, capsys):
    """No threshold given: the packaged model's measured operating point, lower thresholds for
    smaller faces, exactly as `facespot blur PHOTO` (the same pixels, the same count); a given
    threshold is one threshold for every face."""
    from facespot.cli import main
    from facespot.runtime.tracking import blur_margin, blur_settings

    point = blur_settings("default")[0]
    assert point.sizes  # measured, with per-size thresholds: the case where the two used to differ
    health = client.get("/healthz").json()
    thresholds = health["thresholds"]
    assert health["blur_margin"] == blur_margin("default")  # the margin the thresholds were measured with
    assert thresholds["blur"] == point.threshold and thresholds["blur_sizes"] == [list(s) for s in point.sizes]
    counts = []
    for name in ("cameraman.jpg", "astronaut.jpg", "grace_hopper.jpg"):
        photo = tmp_path / f"{name}.png"
        photo.write_bytes(encode(cv2.imread(str(PHOTOS / name), cv2.IMREAD_UNCHANGED), ".png"))
        assert main(["blur", str(photo), "--out", str(tmp_path / f"out_{name}.png"), "--no-progress"]) == 0
        blurred = int(re.search(r"(\d+) face\(s\)", capsys.readouterr().out).group(1))
        r = client.post("/v1/blur?format=png", content=photo.read_bytes())
        assert r.status_code == 200, r.text
        assert int(r.headers["x-faces"]) == blurred
        np.testing.assert_array_equal(decode(r.content), cv2.imread(str(tmp_path / f"out_{name}.png"), cv2.IMREAD_UNCHANGED))
        counts.append(blurred)
    # the counts are the detector's faces at the per-size thresholds; given the lowest of them as
    # one threshold for every size, the server blurs every box at or above it (large low-score
    # boxes too, which the operating point leaves): the two policies differ on these photos
    low = min(t for _, t in point.sizes)
    found = facespot.load("default", threshold=0.05)
    at_point, at_given = [], []
    for name in ("cameraman.jpg", "astronaut.jpg", "grace_hopper.jpg"):
        faces = found(str(PHOTOS / name))
        at_point.append(sum(f.score >= point.start(f.box) for f in faces))
        at_given.append(sum(f.score >= low for f in faces))
        given = client.post(f"/v1/blur?threshold={low}", content=(PHOTOS / name).read_bytes())
        assert int(given.headers["x-faces"]) == at_given[-1]
    # recall first: the point covers boxes under 24 px from 0.1, so a portrait may get one tiny
    # extra cover (the cameraman's and Grace Hopper's today), never patches all over it
    assert counts == at_point and all(1 <= c <= 2 for c in counts) and sum(at_given) > sum(at_point)


def test_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert not re.search(r"""(src|href|action)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", html, re.I)
    for control in ('id="files"', 'id="threshold"', 'id="blur"', 'id="webcam"', "/v1/detect", "/v1/blur"):
        assert control in html


# ---------------------------------------------------------------------- 400


@pytest.mark.parametrize(
    "body, words",
    [
        (b"", "empty upload"),
        (b"just some text, not a photo", "not an image"),
        (ASTRONAUT[: len(ASTRONAUT) // 2], "truncated JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "corrupt PNG"),
    ],
)
@pytest.mark.parametrize("route", ["/v1/detect", "/v1/blur"])
def test_not_an_image_or_corrupt_is_400(client, route, body, words):
    assert_error(client.post(route, content=body), 400, words)
    assert_error(client.post(route, files={"image": ("x.jpg", body)}), 400, words)


@pytest.mark.parametrize(
    "route, query, words",
    [
        ("/v1/detect", "threshold=abc", "'threshold' must be a number from 0 to 1"),
        ("/v1/detect", "threshold=1.5", "threshold"),
        ("/v1/detect", "threshold=nan", "threshold"),
        ("/v1/detect", "max_faces=0", "max_faces"),
        ("/v1/detect", "max_faces=2.5", "an integer"),
        ("/v1/detect", "min_size=-1", "min_size"),
        ("/v1/detect", "thresold=0.3", "unknown query parameter(s) 'thresold'"),
        ("/v1/detect", "method=pixelate", "unknown query parameter"),
        ("/v1/blur", "method=smudge", "'method' must be one of gaussian, pixelate"),
        ("/v1/blur", "margin=3", "margin"),
    ],
)
def test_bad_parameters_are_400(client, route, query, words):
    assert_error(client.post(f"{route}?{query}", content=ASTRONAUT), 400, words)


def test_multipart_without_the_image_field_is_400(client):
    assert_error(client.post("/v1/detect", files={"photo": ("a.jpg", ASTRONAUT)}), 400, "field named 'image'")
    two = client.post("/v1/detect", files=[("image", ("a.jpg", ASTRONAUT)), ("image", ("b.jpg", ASTRONAUT))])
    assert_error(two, 400, "one image per request")
    assert_error(client.post("/v1/detect", content=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}), 400, "boundary")


# ---------------------------------------------------------------------- 401


def test_token_is_required_on_v1_only(make_client):
    c = make_client(token="s3cret")
    for route in ("/v1/detect", "/v1/blur"):
        r = c.post(route, content=ASTRONAUT)
        assert_error(r, 401, "Bearer")
        assert r.headers["www-authenticate"] == "Bearer"
        assert_error(c.post(route, content=ASTRONAUT, headers={"Authorization": "Bearer wrong"}), 401)
        assert_error(c.post(route, content=ASTRONAUT, headers={"Authorization": "s3cret"}), 401)
        assert c.post(route, content=ASTRONAUT, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/healthz").json()["auth"] is True
    assert c.get("/").status_code == 200


def test_bearer_is_case_insensitive_and_an_empty_token_is_refused(make_client):
    """RFC 9110: the scheme is case-insensitive (clients send "bearer"); and ServeConfig(token="")
    used to switch authentication off without a word (issue 20, item 12)."""
    from facespot.errors import FacespotError
    from facespot.serve.app import ServeConfig

    c = make_client(token="s3cret")
    for header in ("bearer s3cret", "BEARER s3cret", "Bearer  s3cret "):
        assert c.post("/v1/detect", content=ASTRONAUT, headers={"Authorization": header}).status_code == 200, header
    assert_error(c.post("/v1/detect", content=ASTRONAUT, headers={"Authorization": "bearer S3CRET"}), 401)
    assert_error(c.post("/v1/detect", content=ASTRONAUT, headers={"Authorization": "Basic s3cret"}), 401)
    for empty in ("", "  "):
        with pytest.raises(FacespotError, match="token is empty"):
            ServeConfig(token=empty)


def test_token_is_checked_before_the_upload_is_read(make_client):
    app = make_client(token="s3cret").app
    chunks = (b"\xff" * 65536 for _ in range(100))
    status, _, body, read = asgi_post(app, "/v1/detect", {"Content-Type": "image/jpeg"}, chunks)
    assert status == 401 and read == 0


# ---------------------------------------------------------------------- 408


def test_stalled_upload_is_408(make_client):
    app = make_client(upload_timeout=0.3).app
    status, _, body, read = asgi_post(app, "/v1/detect", {"Content-Type": "image/jpeg"}, (b"\xff" * 10 for _ in range(100)), delay=0.1)
    assert status == 408 and b"not received within 0.3 s" in body and read < 10


# ---------------------------------------------------------------------- 413


def test_declared_oversize_upload_is_413_before_reading(make_client):
    c = make_client(max_upload_mb=0.05)  # 52 KB; the astronaut is 61 KB
    assert_error(c.post("/v1/detect", content=ASTRONAUT), 413, "limit of 0.05 MB")
    assert_error(c.post("/v1/blur", files={"image": ("a.jpg", ASTRONAUT)}), 413)
    status, _, _, read = asgi_post(c.app, "/v1/detect", {"Content-Length": str(10**9)}, (b"x" * 65536 for _ in range(100)))
    assert status == 413 and read == 0
    assert make_client(max_upload_mb=0.1).post("/v1/detect", content=ASTRONAUT).status_code == 200


@pytest.mark.parametrize("kind", ["raw", "multipart"])
def test_streamed_oversize_upload_is_refused_while_streaming(make_client, kind):
    """No Content-Length (chunked): the app stops at the chunk that crosses 1 MB of 6.4 MB."""
    app = make_client(max_upload_mb=1).app
    if kind == "raw":
        headers, payload = {"Content-Type": "image/jpeg"}, ASTRONAUT + b"\x00" * (100 * 65536)
    else:
        payload, ctype = multipart("image", ASTRONAUT + b"\x00" * (100 * 65536))
        headers = {"Content-Type": ctype}
    chunks = [payload[i : i + 65536] for i in range(0, len(payload), 65536)]
    status, hdrs, body, read = asgi_post(app, "/v1/detect", headers, iter(chunks))
    assert status == 413 and b"limit of 1 MB" in body and hdrs["content-type"] == "application/json"
    assert read == 17 < len(chunks)  # 17 x 64 KB is the first read over 1 MB; the rest is never read


def test_image_over_the_pixel_limit_is_413(make_client, client):
    assert_error(make_client(max_pixels=512 * 512 - 1).post("/v1/detect", content=ASTRONAUT), 413, "512x512 = 262144 pixels")
    assert_error(client.post("/v1/blur", content=png_bomb_header(40000, 40000)), 413, "40000x40000")
    assert_error(client.post("/v1/detect", files={"image": ("b.png", png_bomb_header(9000, 9000))}), 413, "over this server's limit of 50000000")


# ---------------------------------------------------------------------- 503, 500, 404, 405 and the event loop


def _in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", fn()), daemon=True)
    t.start()
    return t, out


def test_busy_past_the_queue_timeout_is_503_and_health_stays_responsive(make_client, blocking_pool):
    from starlette.testclient import TestClient

    pool, det = blocking_pool
    with TestClient(make_client(pool, queue_timeout=0.2).app) as c:  # one event loop for all requests
        t, first = _in_thread(lambda: c.post("/v1/detect", content=ASTRONAUT))
        assert det.entered.wait(10)
        t0 = time.monotonic()
        assert c.get("/healthz").status_code == 200  # the loop is free while inference runs
        assert time.monotonic() - t0 < 1.0
        r = c.post("/v1/detect", content=ASTRONAUT)
        assert_error(r, 503, "busy")
        assert r.headers["retry-after"] == "1"
        det.release.set()
        t.join(10)
        assert first["r"].status_code == 200 and first["r"].json()["faces"] == []


def test_at_capacity_is_503_at_once_before_the_upload_is_read(make_client, blocking_pool):
    """Capacity = workers + max_waiting requests in progress (here 1 + 0): memory stays bounded."""
    from starlette.testclient import TestClient

    pool, det = blocking_pool
    with TestClient(make_client(pool, queue_timeout=30, max_waiting=0).app) as c:
        t, first = _in_thread(lambda: c.post("/v1/detect", content=ASTRONAUT))
        assert det.entered.wait(10)
        t0 = time.monotonic()
        assert_error(c.post("/v1/blur", content=ASTRONAUT), 503, "1 requests in progress")
        assert time.monotonic() - t0 < 5
        assert c.get("/healthz").json()["in_progress"] == 1
        det.release.set()
        t.join(10)
        assert first["r"].status_code == 200


def test_internal_errors_are_500_json_without_details(make_client, real_pool):
    from facespot.serve.pool import DetectorPool

    pool = DetectorPool([BlockingDetector(real_pool.detectors[0].options, fail=True)])
    assert_error(make_client(pool).post("/v1/detect", content=ASTRONAUT), 500, "internal server error")
    pool.close()


def test_unknown_routes_and_methods_are_json(client):
    assert_error(client.get("/v2/detect"), 404, "not found")
    assert_error(client.get("/v1/detect"), 405, "method not allowed")
    assert_error(client.post("/healthz"), 405)


# ---------------------------------------------------------------------- privacy


def test_uploads_touch_no_disk_and_no_log(make_client, monkeypatch, caplog):
    """A 2 MB multipart upload (Starlette's own parser would spool it to a temporary file)."""

    def no_disk(*args, **kwargs):
        raise AssertionError("an upload was about to be written to disk")

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, no_disk)
    noise = np.random.default_rng(0).integers(0, 256, (700, 1000, 3), dtype=np.uint8)
    big = encode(noise, ".png")
    assert len(big) > 2 * 1024 * 1024
    caplog.set_level(logging.DEBUG)
    c = make_client()
    for route in ("/v1/detect", "/v1/blur"):
        r = c.post(route, files={"image": ("private-holiday-photo.png", big, "image/png")})
        assert r.status_code == 200, r.text
    assert "private-holiday-photo" not in caplog.text
