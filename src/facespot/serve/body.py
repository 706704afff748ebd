"""Reading an upload from the request stream: in memory only, refused as soon as it is too big.

Starlette's own form parser spools file parts over 1 MB to a temporary file on disk; an
upload here must never touch the disk, so the multipart body is parsed as it streams in with
python-multipart's push parser and only the ``image`` part is kept, in a ``bytearray``.

The size limit applies to the whole request body. A ``Content-Length`` over it is refused
before a byte of the body is read (with ``Expect: 100-continue`` the client never sends it);
a body without one (chunked) or one that sends more than it declared is refused at the chunk
that crosses the limit -- the rest is never read.
"""

from __future__ import annotations

from typing import AsyncIterator

from facespot.serve.decode import DecodeError

FIELD = "image"
"""The multipart field that carries the image."""


def too_large(limit: int) -> DecodeError:
    mb = round(limit / (1024 * 1024), 3)
    return DecodeError(f"upload is larger than this server's limit of {mb:g} MB", 413)


def declared_length(headers) -> int | None:
    """``Content-Length`` as an int; a malformed value is a 400."""
    value = headers.get("content-length")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise DecodeError(f"malformed Content-Length header {value!r}")
    return int(value)


async def read_upload(headers, stream: AsyncIterator[bytes], limit: int) -> bytes:
    """The image bytes of a request: the multipart field ``image``, or else the raw body.

    Any other ``Content-Type`` (``image/jpeg``, ``application/octet-stream``, or curl's
    ``--data-binary`` default ``application/x-www-form-urlencoded``) means a raw body: what it
    holds is recognised by its bytes, not by the header.
    """
    length = declared_length(headers)
    if length is not None and length > limit:
        raise too_large(limit)
    ctype = headers.get("content-type", "")
    if ctype.lower().startswith("multipart/"):
        return await _read_multipart(ctype, stream, limit)
    body = bytearray()
    async for chunk in stream:
        if len(body) + len(chunk) > limit:
            raise too_large(limit)
        body += chunk
    return bytes(body)


async def _read_multipart(ctype: str, stream: AsyncIterator[bytes], limit: int) -> bytes:
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(ctype)
    boundary = params.get(b"boundary")
    if not boundary:
        raise DecodeError("multipart body without a boundary in its Content-Type")

    state = {"header": b"", "value": b"", "disposition": b"", "keep": False, "found": 0}
    image = bytearray()

    def on_part_begin() -> None:
        state.update(disposition=b"", keep=False)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        if state["header"].lower() == b"content-disposition":
            state["disposition"] = state["value"]
        state.update(header=b"", value=b"")

    def on_headers_finished() -> None:
        _, opts = parse_options_header(state["disposition"])
        if opts.get(b"name") == FIELD.encode():
            state["found"] += 1
            state["keep"] = True

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["keep"]:
            image.extend(data[start:end])

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    received = 0
    try:
        async for chunk in stream:
            received += len(chunk)
            if received > limit:
                raise too_large(limit)
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise DecodeError(f"malformed multipart body ({exc})") from None
    if state["found"] == 0:
        raise DecodeError(f"multipart body without a field named {FIELD!r} holding the image")
    if state["found"] > 1:
        raise DecodeError(f"one image per request: the multipart body has {state['found']} fields named {FIELD!r}")
    return bytes(image)
