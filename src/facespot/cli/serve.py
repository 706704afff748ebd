"""``facespot serve``: the HTTP API and web page (argument parsing only; the app is
:mod:`facespot.serve`, which needs the ``serve`` extra)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

TOKEN_ENV = "FACESPOT_TOKEN"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="HTTP API and web page for detection and blurring",
        description=(
            "Serve POST /v1/detect (faces as JSON), POST /v1/blur (the image with faces blurred), GET /healthz "
            "and a web page at /. Binds 127.0.0.1 unless --host says otherwise. Uploads stay in memory, are "
            "never written to disk and never logged. Needs: pip install 'facespot[serve]'."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000; 0: any free port)")
    p.add_argument("--model", default="default",
                   help="'default' (packaged weights), a packaged name, a .safetensors / exported .onnx file")  # fmt: skip
    p.add_argument("--untrained", action="store_true", help="allow a bare registry name (random weights: tests only)")
    p.add_argument("--workers", type=int, help="detector sessions run in parallel (default: the physical CPU cores)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per detector session (default: 1)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="refuse request bodies over this size (default: 20)")
    p.add_argument("--max-pixels", type=int, help="refuse images with more pixels (default: 50 million)")
    p.add_argument("--token", help=f"require 'Authorization: Bearer TOKEN' on /v1 calls (default: ${TOKEN_ENV} if set)")
    p.add_argument("--threshold", type=float, default=0.5, help="default minimum face score of /v1/detect (default: 0.5)")
    p.add_argument("--blur-threshold", type=float,
                   help="default minimum face score of /v1/blur, whatever the face's size (default: the faces `facespot blur` "
                        "blurs in a photo: the model's measured operating point, lower for small faces)")  # fmt: skip
    p.add_argument("--queue-timeout", type=float, default=10.0,
                   help="answer 503 when no detector is free within this many seconds (default: 10)")  # fmt: skip
    p.add_argument("--max-queue", type=int, default=64,
                   help="answer 503 at once when workers + this many requests are in progress (default: 64)")  # fmt: skip
    p.add_argument("--upload-timeout", type=float, default=120.0,
                   help="answer 408 when an upload is not received within this many seconds (default: 120)")  # fmt: skip
    p.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info")
    p.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                   help="log one line per request: client, method, path, status (never the upload or the query string; default: on)")  # fmt: skip
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> str | None:
    from facespot.errors import FacespotError

    if not 0 <= args.port <= 65535:
        raise FacespotError(f"--port must be 0-65535, got {args.port}")
    if args.workers is not None and args.workers < 1:
        raise FacespotError(f"--workers must be at least 1, got {args.workers}")
    if args.threads < 1:
        raise FacespotError(f"--threads must be at least 1, got {args.threads}")
    if not args.max_upload_mb > 0:
        raise FacespotError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    if args.max_pixels is not None and args.max_pixels < 1:
        raise FacespotError(f"--max-pixels must be at least 1, got {args.max_pixels}")
    for name in ("threshold", "blur_threshold"):
        if getattr(args, name) is not None and not 0.0 <= getattr(args, name) <= 1.0:
            raise FacespotError(f"--{name.replace('_', '-')} must be between 0 and 1, got {getattr(args, name)}")
    if not args.queue_timeout > 0 or not args.upload_timeout > 0 or args.max_queue < 0:
        raise FacespotError("--queue-timeout and --upload-timeout must be positive, --max-queue at least 0")
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    if token is not None and not token.strip():
        raise FacespotError(f"the token (--token or ${TOKEN_ENV}) is empty; give a real one or leave it unset")
    return token


def _listen(host: str, port: int):
    """A bound, listening socket, so a taken port is one clear error before serving starts."""
    import socket

    from facespot.errors import FacespotError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0]
        # proto must say TCP: asyncio sets TCP_NODELAY only on such sockets, and without it small
        # JSON answers wait ~40 ms for delayed ACKs on keep-alive connections (Nagle).
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        raise FacespotError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace) -> int:
    from facespot.errors import FacespotError

    token = _check(args)
    try:
        import python_multipart  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise FacespotError(f"facespot serve needs the serve extra ({exc.name} is missing): pip install 'facespot[serve]'") from None
    from facespot.runtime.backends import physical_cores
    from facespot.serve import load_pool
    from facespot.serve.app import DEFAULT_MAX_PIXELS, AccessLogFilter, ServeConfig, create_app

    config = ServeConfig(
        model=os.path.basename(str(args.model)), max_upload_mb=args.max_upload_mb,
        max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, token=token, detect_threshold=args.threshold,
        blur_threshold=args.blur_threshold, queue_timeout=args.queue_timeout, max_waiting=args.max_queue,
        upload_timeout=args.upload_timeout,
    )  # fmt: skip
    workers = args.workers or physical_cores()
    sock = _listen(args.host, args.port)
    pool = None
    try:
        pool = load_pool(args.model, workers, config, threads=args.threads, untrained=args.untrained)
        app = create_app(pool, config)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        first = pool.detectors[0]
        print(
            f"facespot serve: http://{shown}:{port}/ -- {first.model_name} ({config.model}), {workers} worker(s), "
            f"{'token required on /v1' if token else 'no token'}",
            file=sys.stderr, flush=True,
        )  # fmt: skip
        if not token and host not in ("127.0.0.1", "::1", "localhost"):
            print(f"facespot serve: warning: listening on {host} without a token: anyone who can reach this port can use it",
                  file=sys.stderr, flush=True)  # fmt: skip
        server = uvicorn.Server(
            uvicorn.Config(app, log_level=args.log_level, access_log=args.access_log, server_header=False,
                           timeout_graceful_shutdown=5, lifespan="off")  # fmt: skip
        )
        logging.getLogger("uvicorn.access").addFilter(AccessLogFilter())  # after uvicorn set its logging up
        server.run(sockets=[sock])
    finally:
        if pool is not None:  # its worker threads and queued jobs end with the server, not at interpreter exit
            pool.close()
        sock.close()
    return 0
