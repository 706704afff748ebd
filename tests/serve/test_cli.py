"""`facespot serve` options: checked before any model loads, one-line errors, exit code 2."""

from __future__ import annotations

import argparse
import socket

import pytest

from facespot.cli import main
from facespot.cli.serve import TOKEN_ENV, _check

from .conftest import require_serve_extra

require_serve_extra()


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as e:
        main(["serve", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--host", "--port", "--model", "--workers", "--max-upload-mb", "--max-pixels", "--token", TOKEN_ENV):
        assert opt in out
    assert "127.0.0.1" in out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--port", "70000"], "--port must be 0-65535"),
        (["--max-upload-mb", "0"], "--max-upload-mb must be positive"),
        (["--threshold", "2"], "--threshold must be between 0 and 1"),
        (["--token", " "], "token"),
        (["--max-pixels", "0"], "--max-pixels"),
        (["--upload-timeout", "0"], "--upload-timeout"),
    ],
)
def test_bad_options_are_one_line_exit_2(capsys, argv, words):
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("facespot: error:") and words in err and "\n" not in err


def test_port_in_use_is_one_line_exit_2(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"cannot listen on 127.0.0.1:{port}" in err and "\n" not in err


def test_token_from_the_environment(monkeypatch):
    args = argparse.Namespace(port=0, workers=None, threads=1, max_upload_mb=20.0, max_pixels=None, threshold=0.5,
                              blur_threshold=0.4, queue_timeout=10.0, max_queue=64, upload_timeout=120.0, token=None)  # fmt: skip
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert _check(args) is None
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert _check(args) == "from-env"
    args.token = "from-flag"
    assert _check(args) == "from-flag"
    monkeypatch.setenv(TOKEN_ENV, "")
    args.token = None
    with pytest.raises(Exception, match="empty"):
        _check(args)


def test_listening_socket_is_tcp_so_replies_are_not_delayed():
    """asyncio sets TCP_NODELAY only on sockets whose proto is TCP; without it, keep-alive
    clients waited ~40 ms per small JSON answer (Nagle + delayed ACK)."""
    from facespot.cli.serve import _listen

    sock = _listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        with socket.create_connection(sock.getsockname()[:2]):
            conn, _ = sock.accept()
            assert conn.proto == socket.IPPROTO_TCP
            conn.close()
    finally:
        sock.close()


@pytest.mark.parametrize("stop", [None, KeyboardInterrupt])
def test_the_detector_pool_is_closed_when_the_server_stops(monkeypatch, capsys, stop):
    """Its worker threads and queued jobs end with the server (no model is loaded here)."""
    from types import SimpleNamespace

    import uvicorn

    import facespot.serve
    import facespot.serve.app

    closed = []
    pool = SimpleNamespace(detectors=[SimpleNamespace(model_name="stub")], close=lambda: closed.append(True))

    class Server:
        def __init__(self, config):
            pass

        def run(self, sockets):
            if stop is not None:
                raise stop()

    monkeypatch.setattr(facespot.serve, "load_pool", lambda *a, **k: pool)
    monkeypatch.setattr(facespot.serve.app, "create_app", lambda pool, config: object())
    monkeypatch.setattr(uvicorn, "Server", Server)
    assert main(["serve", "--port", "0", "--workers", "1"]) == (0 if stop is None else 130)
    assert closed == [True]
