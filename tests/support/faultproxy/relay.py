"""How the fault proxy handles one request: read it, ask the rules for a fault, and
forward it to the server (over a connection of its own) and its answer back, applying the
fault at its point: before forwarding (reset, blackhole, a delayed or late delivery, a
synthetic S3 error), in the request body (a cut upload), or in the answer (a delayed,
withheld or cut response). What happened is noted in the request log (traffic.py)."""

from __future__ import annotations

import asyncio
import time

from tests.support.faultproxy.connection import (
    LIMIT,
    NETWORK_ERRORS,
    Client,
    cancel,
    close,
)
from tests.support.faultproxy.http_messages import (
    COPY_SIZE,
    Cut,
    HttpError,
    Message,
    budget,
    copy_body,
    discard,
    keep_alive,
    parse_message,
    read_head,
    request_framing,
    response_framing,
    s3_error_answer,
    writer_sink,
)
from tests.support.faultproxy.rules import Fault, FaultKind
from tests.support.faultproxy.traffic import Traffic

_BAD_GATEWAY = Fault.s3_error(502, "BadGateway", "The fault proxy could not reach the server.")


class Relay:
    """Serves the requests of client connections against `upstream`, by `traffic`'s rules."""

    def __init__(self, upstream: tuple[str, int], traffic: Traffic) -> None:
        self.upstream = upstream
        self.traffic = traffic

    async def exchange(self, client: Client) -> bool:
        """Read one request and act on it; True if the connection goes on."""
        raw = await read_head(client.reader)
        if raw is None:
            return False
        request = parse_message(raw)
        client.requests += 1
        fault, position = self.traffic.admit(client.ident, client.requests, request)
        kind = fault.kind if fault else None
        if kind is FaultKind.RESET:
            client.reset()
            return False
        if kind is FaultKind.BLACKHOLE:
            while await client.reader.read(COPY_SIZE):
                pass
            return False
        if fault is not None and kind is FaultKind.ERROR:
            return await self._answer(client, request, fault, position)
        if fault and kind is FaultKind.DELAY_REQUEST and not await client.waits_out(fault.seconds):
            return False
        if fault and kind is FaultKind.DELIVER_LATE:
            await self._deliver_late(client, request, fault, position)
            return False
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream, limit=LIMIT)
        except OSError:
            return await self._answer(client, request, _BAD_GATEWAY, position)
        up_writer.transport.set_write_buffer_limits(0)  # drain() waits until all is sent
        try:
            return await self._relay(client, request, fault, position, up_reader, up_writer)
        finally:
            await close(up_writer, abort=True)

    async def _deliver_late(self, client: Client, request: Message, fault: Fault, pos: int) -> None:
        """Read the request whole, answer nothing, and forward it once `fault.seconds` have
        passed (the client has likely hung up by then); the server's answer is dropped."""
        if request.expects_continue:
            client.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = bytearray()

        async def keep(data: bytes) -> None:
            body.extend(data)

        await copy_body(client.reader, request_framing(request), keep)
        await client.waits_out(fault.seconds)
        await asyncio.sleep(
            max(0.0, fault.seconds - (time.monotonic() - self.traffic.started(pos)))
        )
        up_reader, up_writer = await asyncio.open_connection(*self.upstream, limit=LIMIT)
        try:
            up_writer.write(request.raw + bytes(body))
            await up_writer.drain()
            while True:
                raw = await read_head(up_reader)
                if raw is None:
                    return
                response = parse_message(raw, response=True)
                if not 100 <= response.status < 200:
                    break
            self.traffic.note(pos, status=response.status)
            await copy_body(up_reader, response_framing(response, request.method), discard)
        finally:
            await close(up_writer, abort=True)

    async def _answer(self, client: Client, request: Message, fault: Fault, pos: int) -> bool:
        """A synthetic S3 error. With Expect: 100-continue the client holds its body back,
        so the connection is closed after the answer instead."""
        keep = not request.expects_continue and not request.has_token("connection", "close")
        if not request.expects_continue:
            await copy_body(client.reader, request_framing(request), discard)
        self.traffic.note(pos, status=fault.status)  # noted before the client can see it
        request_id = f"FAULTPROXY{pos + 1:08d}"
        client.writer.write(
            s3_error_answer(request, fault.status, fault.code, fault.message, request_id, keep=keep)
        )
        if not keep:
            await client.linger_close()
        return keep

    async def _relay(
        self,
        client: Client,
        request: Message,
        fault: Fault | None,
        pos: int,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> bool:
        """Forward a request and its answer, applying the fault at its point."""
        kind = fault.kind if fault else None
        up_writer.write(request.raw)
        cut = fault.nbytes if fault and kind is FaultKind.CUT_UPLOAD else None
        pump = asyncio.get_running_loop().create_task(self._pump(client, request, up_writer, cut))
        try:
            interim: list[int] = []
            while True:  # 1xx answers (100 Continue) go to the client as they come
                raw = await read_head(up_reader)
                if raw is None:
                    raise HttpError("the server closed without answering")
                response = parse_message(raw, response=True)
                if not 100 <= response.status < 200:
                    break
                interim.append(response.status)
                self.traffic.note(pos, interim=tuple(interim))
                client.writer.write(raw)
            self.traffic.note(pos, status=response.status)  # the server has applied the request
            framing = response_framing(response, request.method)
            delayed = fault and kind is FaultKind.DELAY_RESPONSE
            if delayed and fault and not await client.waits_out(fault.seconds):
                return False
            if kind is FaultKind.RESET_AFTER:
                await copy_body(up_reader, framing, discard)
                client.reset()
                return False
            client.writer.write(raw)
            sink = writer_sink(client.writer)
            if fault is not None and kind is FaultKind.CUT_RESPONSE:
                sink = budget(sink, fault.nbytes)
            try:
                await copy_body(up_reader, framing, sink)
            except Cut:
                return False  # _serve's close flushes the bytes sent so far, then FINs
            await client.writer.drain()
            if not pump.done() and request.expects_continue and 100 not in interim:
                await cancel(pump)
                await client.linger_close()  # answered early: the client keeps its body
                return False
            return await pump and keep_alive(request, response, framing)
        finally:
            await cancel(pump)

    async def _pump(
        self, client: Client, request: Message, up_writer: asyncio.StreamWriter, cut: int | None
    ) -> bool:
        """Copy the request body upstream (cut after `cut` bytes if given); True if whole.
        A write the server refuses does not stop it: the client's body is still drained."""
        upstream_open = True

        async def forward(data: bytes) -> None:
            nonlocal upstream_open
            if upstream_open:
                try:
                    up_writer.write(data)
                    await up_writer.drain()
                except OSError:
                    upstream_open = False

        try:
            await copy_body(
                client.reader,
                request_framing(request),
                forward if cut is None else budget(forward, cut),
            )
        except Cut:
            client.reset()
            up_writer.close()  # the server gets the bytes so far (all flushed), then a FIN
            return False
        except NETWORK_ERRORS:
            up_writer.transport.abort()  # wakes _relay, which waits for the answer
            client.writer.transport.abort()
            return False
        return True
