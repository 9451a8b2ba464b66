"""One client connection to the fault proxy, as its event loop holds it: the socket, its
streams, and whether the client has hung up; with the ways the proxy ends a connection
(an RST, a FIN after the answer, a close that waits for nothing)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass

from tests.support.faultproxy.http_messages import COPY_SIZE, HttpError

# Read buffer per connection: a whole 5 MiB part fits, so a client's hang-up is seen
# (as EOF) even while the proxy holds its request.
LIMIT = 8 * 1024 * 1024
_LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends an RST
NETWORK_ERRORS = (HttpError, OSError, asyncio.IncompleteReadError)


class HangUpProtocol(asyncio.StreamReaderProtocol):
    """A stream protocol that also notes when the client hangs up (EOF or a lost link)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        super().__init__(reader)
        self.hung_up = asyncio.Event()

    def eof_received(self) -> bool:
        self.hung_up.set()
        return bool(super().eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        self.hung_up.set()
        super().connection_lost(exc)


@dataclass(eq=False)
class Client:
    ident: int
    sock: socket.socket
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    hung_up: asyncio.Event
    requests: int = 0

    def reset(self) -> None:
        """Close with an RST (SO_LINGER 0) rather than a FIN."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        self.writer.transport.abort()

    async def waits_out(self, seconds: float) -> bool:
        """Wait `seconds`; False as soon as the client hangs up."""
        try:
            await asyncio.wait_for(self.hung_up.wait(), seconds)
        except TimeoutError:
            return True
        return False

    async def linger_close(self) -> None:
        """FIN after the answer, then drain the client: closing on unread data would RST it."""
        await self.writer.drain()
        self.writer.write_eof()
        while await self.reader.read(COPY_SIZE):
            pass


async def cancel(task: asyncio.Task[bool]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, *NETWORK_ERRORS):
        await task


async def close(writer: asyncio.StreamWriter, *, abort: bool = False) -> None:
    if abort:
        writer.transport.abort()
    else:
        writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
