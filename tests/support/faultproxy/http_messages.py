"""HTTP/1.1 framing for the fault proxy: message heads, body framing, raw body copies.

The proxy forwards bytes as they came (nothing is re-encoded), so all it must know is
where each message ends: this module parses request and status lines and headers, picks
a body's framing (RFC 9112 section 6: none, Content-Length, chunked, or until close) and
copies a body's wire bytes, chunk framing included, to a sink that may stop it part-way
(`budget`). It also writes the synthetic S3 error answers the proxy sends in place of the
server.
"""

from __future__ import annotations

import asyncio
import http
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Literal
from xml.sax.saxutils import escape

__all__ = [
    "Cut",
    "Framing",
    "HttpError",
    "Message",
    "budget",
    "copy_body",
    "discard",
    "keep_alive",
    "parse_message",
    "read_head",
    "request_framing",
    "response_framing",
    "s3_error_answer",
    "writer_sink",
]

Sink = Callable[[bytes], Awaitable[None]]
COPY_SIZE = 64 * 1024


class HttpError(Exception):
    """A message the proxy cannot frame, or a peer that hung up inside one."""


@dataclass(frozen=True)
class Message:
    """A parsed message head; `raw` is forwarded as is, names are lower-cased for lookup."""

    raw: bytes
    start: tuple[str, str, str]  # (method, target, version) or (version, status, reason)
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """The field's value (repeated fields joined by ", "), or None if absent."""
        values = [value for key, value in self.headers if key == name]
        return ", ".join(values) if values else None

    def has_token(self, name: str, token: str) -> bool:
        """Whether a comma-separated field (Connection, Transfer-Encoding...) lists `token`."""
        value = self.header(name) or ""
        return token in (part.strip().lower() for part in value.split(","))

    @property
    def method(self) -> str:
        return self.start[0].upper()

    @property
    def path(self) -> str:
        return self.start[1].partition("?")[0]

    @property
    def query(self) -> str:
        return self.start[1].partition("?")[2]

    @property
    def status(self) -> int:
        return int(self.start[1])

    @property
    def expects_continue(self) -> bool:
        return (self.header("expect") or "").lower() == "100-continue"


@dataclass(frozen=True)
class Framing:
    """How a body is delimited: no body, `length` bytes, chunked, or until the peer closes."""

    kind: Literal["none", "length", "chunked", "close"]
    length: int = 0


async def read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The next message head up to its blank line; None if the peer closed between messages."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise HttpError("connection closed inside a message head") from exc
    except asyncio.LimitOverrunError as exc:
        raise HttpError("message head too long") from exc


def parse_message(raw: bytes, *, response: bool = False) -> Message:
    """Split a head into its start line and (lower-cased name, value) fields."""
    lines = raw.decode("latin-1").removesuffix("\r\n\r\n").split("\r\n")
    start = lines[0].split(" ", 2)
    if len(start) < 2 or (response and not (start[1].isdigit() and len(start[1]) == 3)):
        raise HttpError(f"bad start line {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise HttpError(f"bad header line {line!r}")
        headers.append((name.lower(), value.strip()))
    return Message(raw, (start[0], start[1], start[2] if len(start) > 2 else ""), tuple(headers))


def _content_length(message: Message) -> int | None:
    value = message.header("content-length")
    if value is None:
        return None
    lengths = {part.strip() for part in value.split(",")}
    if len(lengths) != 1 or not (length := lengths.pop()).isdigit():
        raise HttpError(f"bad Content-Length {value!r}")
    return int(length)


def _chunked(message: Message) -> bool | None:
    """True if the last transfer coding is chunked, False if another, None if no field."""
    value = message.header("transfer-encoding")
    return None if value is None else value.split(",")[-1].strip().lower() == "chunked"


def request_framing(request: Message) -> Framing:
    chunked = _chunked(request)
    if chunked is False:
        raise HttpError("a request's last transfer coding must be chunked")
    if chunked:
        return Framing("chunked")
    length = _content_length(request)
    return Framing("none") if not length else Framing("length", length)


def response_framing(response: Message, request_method: str) -> Framing:
    status = response.status
    if request_method == "HEAD" or 100 <= status < 200 or status in (204, 304):
        return Framing("none")
    chunked = _chunked(response)
    if chunked is not None:
        return Framing("chunked" if chunked else "close")
    length = _content_length(response)
    return Framing("close") if length is None else Framing("length", length)


async def discard(data: bytes) -> None:
    """A sink that drops what it is given."""


async def _copy_exact(reader: asyncio.StreamReader, count: int, sink: Sink) -> None:
    while count > 0:
        data = await reader.read(min(count, COPY_SIZE))
        if not data:
            raise HttpError("connection closed inside a body")
        count -= len(data)
        await sink(data)


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise HttpError("bad or truncated chunk line") from exc


async def _copy_chunked(reader: asyncio.StreamReader, sink: Sink) -> None:
    while True:
        line = await _line(reader)
        await sink(line)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise HttpError(f"bad chunk size line {line!r}") from exc
        if size == 0:
            break
        await _copy_exact(reader, size + 2, sink)  # the chunk and its CRLF
    while (line := await _line(reader)) != b"\r\n":  # the trailer section
        await sink(line)
    await sink(line)


async def copy_body(reader: asyncio.StreamReader, framing: Framing, sink: Sink) -> None:
    """Pass a body's wire bytes from `reader` to `sink`, stopping where the body ends."""
    if framing.kind == "length":
        await _copy_exact(reader, framing.length, sink)
    elif framing.kind == "chunked":
        await _copy_chunked(reader, sink)
    elif framing.kind == "close":
        while data := await reader.read(COPY_SIZE):
            await sink(data)


class Cut(Exception):
    """A `budget` sink has passed on all the bytes it was allowed."""


def budget(sink: Sink, nbytes: int) -> Sink:
    """A sink that passes `nbytes` bytes on, then raises Cut at the first byte past them."""
    left = nbytes

    async def cut(data: bytes) -> None:
        nonlocal left
        if left:
            await sink(data[:left])
        if len(data) > left:
            raise Cut
        left -= len(data)

    return cut


def writer_sink(writer: asyncio.StreamWriter) -> Sink:
    async def write(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    return write


def keep_alive(request: Message, response: Message, framing: Framing) -> bool:
    """Whether the connection may carry another request after this exchange."""
    if framing.kind == "close" or request.has_token("connection", "close"):
        return False
    if response.start[0] == "HTTP/1.0":
        return response.has_token("connection", "keep-alive")
    return not response.has_token("connection", "close")


def s3_error_answer(
    request: Message, status: int, code: str, message: str, request_id: str, *, keep: bool
) -> bytes:
    """An S3-style XML error answer, as bytes (no body for HEAD, as S3 does)."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(request.path)}</Resource><RequestId>{request_id}</RequestId></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
        f"Content-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
        f"x-amz-request-id: {request_id}\r\nDate: {formatdate(usegmt=True)}\r\n"
        f"Server: faultproxy\r\nConnection: {'keep-alive' if keep else 'close'}\r\n\r\n"
    ).encode("latin-1")
    return head if request.method == "HEAD" else head + body
