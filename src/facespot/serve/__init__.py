"""``facespot serve``: an HTTP API and a web page for detection and anonymisation.

Needs the ``serve`` extra (``pip install "facespot[serve]"``: Starlette, uvicorn,
python-multipart). ``serve/`` owns the HTTP side only -- routes, limits, authentication and the
page (:mod:`.app`), reading uploads (:mod:`.body`, :mod:`.decode`) and the detector pool
(:mod:`.pool`); detection and blurring are the runtime's.

In Python::

    from facespot.serve import ServeConfig, create_app, load_pool
    config = ServeConfig(token="s3cret")
    app = create_app(load_pool("default", workers=2, config=config), config)  # any ASGI server
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from facespot.serve.app import ServeConfig
    from facespot.serve.pool import DetectorPool

__all__ = ["ServeConfig", "create_app", "load_pool"]


def __getattr__(name: str):
    if name in ("ServeConfig", "create_app"):
        from facespot.serve import app

        return getattr(app, name)
    raise AttributeError(name)


def load_pool(
    model: str = "default",
    workers: int = 1,
    config: "ServeConfig | None" = None,
    threads: int = 1,
    untrained: bool = False,
    queue_timeout: float | None = None,
) -> "DetectorPool":
    """``workers`` detector sessions of ``model`` (``threads`` CPU threads each) in a pool."""
    from facespot.runtime.detector import load
    from facespot.serve.app import ServeConfig
    from facespot.serve.pool import DetectorPool

    config = config or ServeConfig(model=str(model))
    detectors = [
        load(model, threads=threads, untrained=untrained, rgb=True, score_threshold=config.detect_threshold,
             max_faces=config.max_faces, max_pixels=config.max_pixels)  # fmt: skip
        for _ in range(int(workers))
    ]
    timeout = config.queue_timeout if queue_timeout is None else queue_timeout
    return DetectorPool(detectors, queue_timeout=timeout, max_waiting=config.max_waiting)
