"""The HTTP app: routes, limits, authentication and the one static page (Starlette).

Detection itself is the runtime's (:mod:`facespot.runtime.detector`,
:mod:`facespot.runtime.anonymize`); this module moves bytes in and out, checks them, and runs
the runtime in the :class:`~facespot.serve.pool.DetectorPool` threads.

Routes::

    GET  /            the web page (self-contained: no external script, style or font)
    GET  /healthz     {"status": "ok", "model", "architecture", "version", ...}
    POST /v1/detect   image (multipart field "image" or raw body) -> {"width", "height", "faces"}
    POST /v1/blur     image -> the image with faces blurred, same format (or ``format``) and displayed size;
                      by default the faces ``facespot blur`` blurs in a photo (the model's measured
                      operating point, lower thresholds for small faces)
    POST /v1/convert  image -> the image as displayed, as PNG (or ``format``): for a browser that
                      cannot decode the upload (TIFF), so the page can show it

Every error is JSON ``{"error": "..."}``: 400 (not an image, corrupt, bad parameter), 401 (token),
404 / 405, 408 (upload not received within ``upload_timeout``), 413 (upload over
``max_upload_mb``, image over ``max_pixels``), 503 (busy), 500.
Uploads are held in memory only, never written to disk and never logged. At most
``workers + max_waiting`` API requests are in progress at once (reading, waiting or running);
more get 503 before their upload is read, so memory stays bounded by that many uploads.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from facespot import __version__
from facespot.errors import FacespotError
from facespot.serve.body import read_upload
from facespot.serve.decode import FORMATS, DecodeError, Decoded, decode_upload, encode_like
from facespot.serve.pool import Busy, DetectorPool

DEFAULT_MAX_PIXELS = 50_000_000
"""Default pixel limit of the server: a 48 MP phone photo fits; decoded it is ~150 MB of RGB."""


@dataclass
class ServeConfig:
    """What the app needs besides its detectors (the CLI fills it from its options)."""

    model: str = "default"  # shown by /healthz; a packaged name also picks /v1/blur's measured operating point
    max_upload_mb: float = 20.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    token: str | None = None
    detect_threshold: float = 0.5
    blur_threshold: float | None = None  # None: `facespot blur`'s operating point for a photo (see ServeApp)
    max_faces: int = 750
    queue_timeout: float = 10.0
    max_waiting: int = 64
    upload_timeout: float = 120.0  # a body not received by then is refused (408): stalled clients free their slot

    def __post_init__(self) -> None:
        if self.token is not None and not self.token.strip():  # "" must not quietly mean "no authentication"
            raise FacespotError("ServeConfig: token is empty; give a real one, or None for no authentication")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class AccessLogFilter(logging.Filter):
    """uvicorn's access lines without the query string: a client may put a token (``?token=``)
    or anything else there, and the log keeps the client, method, path and status only."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):  # client, method, path, version, status
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


# ---------------------------------------------------------------------- query parameters


def _number(params, name: str, default: float, lo: float, hi: float, integer: bool = False) -> Any:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = math.nan
    if not (lo <= value <= hi):  # NaN fails too
        kind = "an integer" if integer else "a number"
        raise ApiError(400, f"query parameter {name!r} must be {kind} from {lo:g} to {hi:g}, got {raw!r}")
    return value


def _check_known(params, known: tuple[str, ...]) -> None:
    unknown = sorted(set(params.keys()) - set(known))
    if unknown:
        raise ApiError(400, f"unknown query parameter(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}")


DETECT_PARAMS = ("threshold", "max_faces", "min_size")
BLUR_PARAMS = DETECT_PARAMS + ("method", "margin", "shape", "format")
CONVERT_FORMATS = ("png", "jpeg", "webp")
"""What ``format`` may ask for: formats every current browser decodes."""


def _format(params, default: str | None) -> str | None:
    fmt = params.get("format") or default
    if fmt is not None and fmt not in CONVERT_FORMATS:
        raise ApiError(400, f"query parameter 'format' must be one of {', '.join(CONVERT_FORMATS)}, got {fmt!r}")
    return fmt


def _detector_options(base, params, config: ServeConfig, threshold: float):
    opts = replace(
        base,
        score_threshold=_number(params, "threshold", threshold, 0.0, 1.0),
        max_faces=_number(params, "max_faces", config.max_faces, 1, 100_000, integer=True),
        min_face_size=_number(params, "min_size", 0.0, 0.0, 1e6),
    )
    try:
        opts.check()
    except FacespotError as exc:
        raise ApiError(400, str(exc)) from None
    return opts


# ---------------------------------------------------------------------- work done in pool threads


def _faces(detector, data: bytes, options, max_pixels: int) -> tuple[Decoded, list]:
    upload = decode_upload(data, max_pixels)
    detector.options = options  # this detector is ours alone until the job ends
    return upload, detector(upload.rgb, rgb=True)


def _detect_job(detector, data: bytes, options, max_pixels: int) -> dict[str, Any]:
    upload, faces = _faces(detector, data, options, max_pixels)
    return {"width": upload.width, "height": upload.height, "faces": [f.to_dict() for f in faces]}


def _blur_job(detector, data: bytes, options, max_pixels: int, method: str, margin: float, fmt: str | None,
              point=None, shape: str = "ellipse") -> tuple[bytes, str, int]:  # fmt: skip
    """``point``: an operating point (:class:`~facespot.runtime.tracking.TrackSettings`) whose
    per-size thresholds pick the faces to blur; None: every face found."""
    from facespot.runtime.anonymize import anonymize

    upload, faces = _faces(detector, data, options, max_pixels)
    boxes = [f.box for f in faces if point is None or f.score >= point.start(f.box)]
    out = anonymize(upload.rgb, boxes, method=method, margin=margin, shape=shape)
    return encode_like(upload, out, fmt=fmt), FORMATS[fmt or upload.format][0], len(boxes)


def _convert_job(detector, data: bytes, max_pixels: int, fmt: str) -> tuple[bytes, str]:
    upload = decode_upload(data, max_pixels)
    return encode_like(upload, upload.rgb, fmt=fmt), FORMATS[fmt][0]


# ---------------------------------------------------------------------- the app


class ServeApp:
    """The routes of ``facespot serve`` over a ready pool of detectors, one method each, with
    what they share: authentication, the admission count, uploads read with a deadline, and
    jobs run in the pool with its errors turned into HTTP answers."""

    def __init__(self, pool: DetectorPool, config: ServeConfig) -> None:
        from facespot.runtime.tracking import blur_margin, blur_settings

        self.pool, self.config = pool, config
        first = pool.detectors[0]
        self.base_options = first.options
        # /v1/blur without a threshold: `facespot blur`'s operating point for a photo (the model's measured
        # thresholds, lower for small faces; the detector runs at the lowest of them)
        self.blur_point = blur_settings(config.model)[0] if config.blur_threshold is None else None
        blur = config.blur_threshold if self.blur_point is None else self.blur_point.threshold
        sizes = [] if self.blur_point is None else [list(size) for size in self.blur_point.sizes]
        self.blur_margin = blur_margin(config.model)  # what the operating point was measured with
        self.page = resources.files("facespot.serve").joinpath("static/index.html").read_bytes()
        self.health = {
            "status": "ok",
            "version": __version__,
            "model": config.model,
            "architecture": getattr(first, "model_name", "model"),
            "keypoints": int(getattr(first, "num_keypoints", 0) or 0),
            "workers": pool.size,
            "auth": bool(config.token),
            "max_upload_mb": config.max_upload_mb,
            "max_pixels": config.max_pixels,
            "thresholds": {"detect": config.detect_threshold, "blur": blur, "blur_sizes": sizes},
            "blur_margin": self.blur_margin,
        }
        self.expected = config.token.encode() if config.token else None
        self.in_progress = 0
        self.capacity = pool.size + pool.max_waiting

    def starlette(self) -> Starlette:
        app = Starlette(
            routes=[
                Route("/", self.homepage, methods=["GET"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/v1/detect", self.admitted(self.detect), methods=["POST"]),
                Route("/v1/blur", self.admitted(self.blur), methods=["POST"]),
                Route("/v1/convert", self.admitted(self.convert), methods=["POST"]),
            ],
            exception_handlers={
                ApiError: self.on_api_error,
                HTTPException: self.on_http_error,
                ClientDisconnect: self.on_disconnect,
                Exception: self.on_crash,
            },
        )
        app.state.pool = self.pool
        app.state.config = self.config
        return app

    # ------------------------------------------------------------------ shared by the API routes

    def authorize(self, request: Request) -> None:
        if self.expected is None:
            return
        scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
        # the scheme is case-insensitive (RFC 9110: "bearer" is "Bearer"); the token is compared in constant time
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("latin-1", "replace"), self.expected):
            raise ApiError(401, "missing or wrong token: send 'Authorization: Bearer TOKEN'", {"WWW-Authenticate": "Bearer"})

    def admitted(self, handler):
        """At most ``capacity`` API requests at once; the rest get 503 before their upload is read."""

        async def guarded(request: Request) -> Response:
            self.authorize(request)
            if self.in_progress >= self.capacity:
                raise ApiError(503, f"server busy: {self.in_progress} requests in progress; retry later", {"Retry-After": "1"})
            self.in_progress += 1
            try:
                return await handler(request)
            finally:
                self.in_progress -= 1

        return guarded

    async def upload_of(self, request: Request) -> bytes:
        try:
            read = read_upload(request.headers, request.stream(), self.config.max_upload_bytes)
            return await asyncio.wait_for(read, self.config.upload_timeout)
        except DecodeError as exc:
            raise ApiError(exc.status, str(exc)) from None
        except asyncio.TimeoutError:
            raise ApiError(408, f"upload not received within {self.config.upload_timeout:g} s") from None

    async def in_pool(self, fn, *args):
        try:
            return await self.pool.run(fn, *args)
        except Busy as exc:
            raise ApiError(503, str(exc), {"Retry-After": "1"}) from None
        except DecodeError as exc:
            raise ApiError(exc.status, str(exc)) from None
        except FacespotError as exc:  # the runtime refused this image
            raise ApiError(400, str(exc)) from None

    # ------------------------------------------------------------------ routes

    async def homepage(self, request: Request) -> Response:
        return HTMLResponse(self.page, headers=PAGE_HEADERS)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({**self.health, "in_progress": self.in_progress, "waiting": self.pool.waiting})

    async def detect(self, request: Request) -> Response:
        config = self.config
        _check_known(request.query_params, DETECT_PARAMS)
        options = _detector_options(self.base_options, request.query_params, config, config.detect_threshold)
        data = await self.upload_of(request)
        return JSONResponse(await self.in_pool(_detect_job, data, options, config.max_pixels))

    async def blur(self, request: Request) -> Response:
        from facespot.runtime.anonymize import METHODS, SHAPES

        config, params = self.config, request.query_params
        _check_known(params, BLUR_PARAMS)
        point = self.blur_point if params.get("threshold") in (None, "") else None  # a given threshold: every face over it
        threshold = point.low if point is not None else config.blur_threshold
        options = _detector_options(self.base_options, params, config, threshold)
        method = params.get("method") or "gaussian"
        if method not in METHODS:
            raise ApiError(400, f"query parameter 'method' must be one of {', '.join(METHODS)}, got {method!r}")
        margin = _number(params, "margin", self.blur_margin, 0.0, 2.0)
        shape = params.get("shape") or "ellipse"
        if shape not in SHAPES:
            raise ApiError(400, f"query parameter 'shape' must be one of {', '.join(SHAPES)}, got {shape!r}")
        fmt = _format(params, None)
        data = await self.upload_of(request)
        body, media_type, count = await self.in_pool(_blur_job, data, options, config.max_pixels, method, margin, fmt, point,
                                                     shape)  # fmt: skip
        return Response(body, media_type=media_type, headers={"X-Faces": str(count), "Cache-Control": "no-store"})

    async def convert(self, request: Request) -> Response:
        _check_known(request.query_params, ("format",))
        fmt = _format(request.query_params, "png")
        data = await self.upload_of(request)
        body, media_type = await self.in_pool(_convert_job, data, self.config.max_pixels, fmt)
        return Response(body, media_type=media_type, headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------------ errors

    async def on_api_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error(exc.status, str(exc), exc.headers)

    async def on_http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, str(exc.detail).lower(), dict(exc.headers or {}))

    async def on_disconnect(self, request: Request, exc: Exception) -> Response:
        return Response(status_code=400)  # nobody is listening any more

    async def on_crash(self, request: Request, exc: Exception) -> Response:
        # The traceback goes to the log (by the server); the client learns nothing internal.
        return error(500, "internal server error")


def create_app(pool: DetectorPool, config: ServeConfig) -> Starlette:
    """The Starlette app over a ready pool of detectors."""
    return ServeApp(pool, config).starlette()


PAGE_HEADERS = {
    # Everything the page uses is inline or from this server: nothing else may load.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' blob: data:; media-src 'self' blob: mediastream:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
