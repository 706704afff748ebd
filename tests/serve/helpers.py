"""Small builders for serve tests: EXIF-tagged images, decompression-bomb headers, raw ASGI calls."""

from __future__ import annotations

import asyncio
import struct
import zlib

import cv2
import numpy as np


def exif_tiff(orientation: int, little_endian: bool = False) -> bytes:
    """A minimal EXIF (TIFF) block holding only the orientation tag."""
    e = "<" if little_endian else ">"
    head = (b"II*\x00" if little_endian else b"MM\x00*") + struct.pack(e + "I", 8)
    entry = struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "H", orientation) + b"\x00\x00"
    return head + struct.pack(e + "H", 1) + entry + struct.pack(e + "I", 0)


def jpeg_with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert an APP1 EXIF segment with ``orientation`` right after SOI."""
    body = b"Exif\x00\x00" + exif_tiff(orientation)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


def png_with_orientation(png: bytes, orientation: int) -> bytes:
    """Insert an ``eXIf`` chunk with ``orientation`` after IHDR (before the image data)."""
    data = exif_tiff(orientation, little_endian=True)
    chunk = struct.pack(">I", len(data)) + b"eXIf" + data + struct.pack(">I", zlib.crc32(b"eXIf" + data) & 0xFFFFFFFF)
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def stored_for(displayed: np.ndarray, orientation: int) -> np.ndarray:
    """The stored pixels that an EXIF ``orientation`` turns into ``displayed`` (inverse transform)."""
    inverse = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
               5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, 1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
               8: lambda a: np.rot90(a, -1)}  # fmt: skip
    return np.ascontiguousarray(inverse[orientation](displayed))


def encode(img: np.ndarray, ext: str = ".jpg", params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, img, params or [])
    assert ok
    return buf.tobytes()


def png_bomb_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` pixels (its data is a stub: never decodable)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00" * 64


def multipart(field: str, data: bytes, filename: str = "photo.jpg", boundary: str = "facespotboundary") -> tuple[bytes, str]:
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
        f"Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def asgi_post(app, path: str, headers: dict[str, str], chunks, query: str = "", delay: float = 0.0) -> tuple[int, dict, bytes, int]:
    """POST ``chunks`` to an ASGI app one receive() at a time.

    Returns ``(status, headers, body, chunks_read)``: how many chunks the app pulled before it
    answered -- what the Starlette test client (which hands the app the whole body at once)
    cannot show. ``delay``: seconds before each chunk (a slow client).
    """
    source = iter(chunks)
    read = 0
    messages: list[dict] = []

    async def receive():
        nonlocal read
        if delay:
            await asyncio.sleep(delay)
        try:
            chunk = next(source)
        except StopIteration:
            return {"type": "http.request", "body": b"", "more_body": False}
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        messages.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    hdrs = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], hdrs, body, read
