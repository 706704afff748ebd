"""`facespot serve` as started from the command line, over real loopback sockets (uvicorn)."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

from .conftest import PHOTOS, require_serve_extra

require_serve_extra()


def read_response(sock: socket.socket, timeout: float = 10) -> tuple[int, bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line)
    length = int(headers.get(b"content-length", b"0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split(b" ")[1]), body


def test_healthz_and_detect_over_http(live_server):
    assert live_server.host == "127.0.0.1"  # loopback by default
    with urllib.request.urlopen(live_server.url + "healthz", timeout=10) as r:
        health = json.load(r)
    assert health["status"] == "ok" and health["workers"] == 2
    req = urllib.request.Request(live_server.url + "v1/detect", data=(PHOTOS / "astronaut.jpg").read_bytes(),
                                 headers={"Content-Type": "image/jpeg"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as r:
        assert len(json.load(r)["faces"]) == 1


def test_declared_oversize_body_is_refused_before_it_is_sent(live_server):
    """`Expect: 100-continue` with a 100 MB Content-Length: 413 comes back, no body was sent."""
    with socket.create_connection((live_server.host, live_server.port), timeout=10) as s:
        s.sendall(
            b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            b"Content-Length: 104857600\r\nExpect: 100-continue\r\n\r\n"
        )
        status, body = read_response(s)
    assert status == 413 and b"limit of 2 MB" in body


def test_chunked_oversize_body_is_refused_while_streaming(live_server):
    """A chunked 64 MB upload to a 2 MB server: the 413 arrives while the client is still sending.

    (Like curl, the client stops sending when the answer comes; the server never holds more
    than its limit of the body, and uvicorn discards whatever else a client keeps sending.)
    """
    import select

    chunk = b"\x00" * 65536
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent = 0
    with socket.create_connection((live_server.host, live_server.port), timeout=10) as s:
        s.sendall(b"POST /v1/blur HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n")
        while sent < 64 * 1024 * 1024 and not select.select([s], [], [], 0)[0]:  # until an answer is readable
            s.sendall(frame)
            sent += len(chunk)
        status, body = read_response(s)
    assert status == 413 and b"limit of 2 MB" in body
    assert sent < 16 * 1024 * 1024, f"sent {sent} bytes before the refusal came"


def test_server_log_has_no_upload_content(live_server):
    time.sleep(0.2)
    log = live_server.log.read_text(errors="replace")
    assert "POST /v1/detect" in log  # access lines: method, path, status
    assert "JFIF" not in log and "Exif" not in log


def test_access_log_leaves_the_query_string_out(live_server):
    """A token or anything else a client puts in the URL is not logged (issue 20, item 12)."""
    with socket.create_connection((live_server.host, live_server.port), timeout=10) as s:
        s.sendall(b"GET /healthz?token=sekrit-123&x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, _ = read_response(s)
    assert status == 200
    time.sleep(0.3)
    log = live_server.log.read_text(errors="replace")
    assert '"GET /healthz HTTP/1.1" 200' in log and "sekrit" not in log and "token=" not in log
