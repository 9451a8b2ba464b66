"""A fault-injecting HTTP/1.1 proxy for tests against a real S3 server (SeaweedFS).

`FaultProxy` listens on a free loopback port and forwards each request to the upstream
server over an upstream connection of its own, while the client keeps its keep-alive
connection to the proxy. Rules (`add_rule`) pick the requests a `Fault` applies to, so a
test can reset, stall, delay, cut or fail the exact S3 operation it studies, and check in
`requests` what reached the proxy and what it did. The event loop runs in a thread of its
own; `stop()` closes every socket and joins it, so nothing outlives a test. One upstream
connection per request keeps the server's side simple: no stale pooled connection can
fail a request the test did not mean to fail. If the server cannot be reached, the client
gets a 502 BadGateway. HTTP framing is in http_messages, faults and rules in
rules (re-exported here).

    def test_put_survives_a_slowdown(fault_proxy: FaultProxy) -> None:
        rule = fault_proxy.add_rule(Fault.slow_down(), method="PUT", times=1)
        client = boto3.client("s3", endpoint_url=fault_proxy.url, ...)
        ...  # the first PUT fails with SlowDown, the retry reaches the server
        assert rule.applied == 1
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

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
from tests.support.faultproxy.rules import (
    Fault,
    FaultKind,
    HeaderPredicate,
    ProxyStats,
    RequestRecord,
    Rule,
)

if TYPE_CHECKING:
    from objectstore_s3.server.seaweedfs import SeaweedServer

__all__ = ["Fault", "FaultKind", "FaultProxy", "ProxyStats", "RequestRecord", "Rule", "fault_proxy"]

T = TypeVar("T")
# Read buffer per connection: a whole 5 MiB part fits, so a client's hang-up is seen
# (as EOF) even while the proxy holds its request.
_LIMIT = 8 * 1024 * 1024
_LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends an RST
_NETWORK_ERRORS = (HttpError, OSError, asyncio.IncompleteReadError)
_BAD_GATEWAY = Fault.s3_error(502, "BadGateway", "The fault proxy could not reach the server.")


class _Protocol(asyncio.StreamReaderProtocol):
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
class _Client:
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


async def _cancel(task: asyncio.Task[bool]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, *_NETWORK_ERRORS):
        await task


async def _close(writer: asyncio.StreamWriter, *, abort: bool = False) -> None:
    if abort:
        writer.transport.abort()
    else:
        writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


class FaultProxy:
    """A TCP proxy on 127.0.0.1 that parses HTTP/1.1 and applies faults per request."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._cond = threading.Condition()  # an RLock: predicates may call the properties
        self._rules: list[Rule] = []
        self._log: list[RequestRecord] = []
        self._faults: dict[str, int] = {}
        self._accepted = 0
        self._active = 0
        self._port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._acceptor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._clients: set[_Client] = set()

    # -- lifecycle, from the test's thread ------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> FaultProxy:
        """Start the loop thread and listen on a free port (kept across refuse/accept)."""
        if self._loop is not None:
            raise RuntimeError("the proxy is already running")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="faultproxy", daemon=True
        )
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        """Close the listener and every connection (held ones too), then join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._call(self._shutdown())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refuse(self, *, drop_connections: bool = True) -> None:
        """Stop listening, so connects are refused; by default also close open connections
        (else a client's pooled keep-alive connection would still get through)."""
        self._call(self._unlisten(drop_connections))

    def accept(self) -> None:
        """Listen again on the same port after `refuse()`."""
        if self._listener is None:
            self._call(self._listen())

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the proxy is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    # -- rules and introspection ----------------------------------------------------------

    def add_rule(
        self,
        fault: Fault,
        *,
        method: str | None = None,
        path: str | None = None,
        query: str | None = None,
        header: HeaderPredicate | None = None,
        times: int | None = None,
    ) -> Rule:
        """Append a rule; rules are tried in order and the first that matches applies."""
        rule = Rule(fault, method, path, query, header, times)
        with self._cond:
            self._rules.append(rule)
        return rule

    def clear_rules(self) -> None:
        with self._cond:
            self._rules.clear()

    def clear_requests(self) -> None:
        with self._cond:
            self._log.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the requests read so far, in arrival order."""
        with self._cond:
            return list(self._log)

    @property
    def stats(self) -> ProxyStats:
        with self._cond:
            return ProxyStats(self._accepted, self._active, len(self._log), dict(self._faults))

    def wait_for(self, predicate: Callable[[FaultProxy], bool], timeout: float = 5.0) -> None:
        """Block until `predicate(self)` holds (checked at each change); TimeoutError if not."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout):
                raise TimeoutError(f"proxy state did not reach the condition: {self.stats}")

    def _admit(self, client: _Client, request: Message) -> tuple[Fault | None, int]:
        headers = {name: request.header(name) or "" for name, _ in request.headers}
        client.requests += 1
        with self._cond:
            rule = next((r for r in self._rules if r.matches(request, headers)), None)
            fault = None
            if rule is not None:
                rule.applied += 1
                fault = rule.fault
                self._faults[fault.name] = self._faults.get(fault.name, 0) + 1
            self._log.append(
                RequestRecord(
                    client.ident,
                    client.requests,
                    request.method,
                    request.path,
                    request.query,
                    headers,
                    fault.name if fault else None,
                    started=time.monotonic(),
                )
            )
            self._cond.notify_all()
            return fault, len(self._log) - 1

    def _note(self, position: int, **changes: Any) -> None:
        with self._cond:
            if position < len(self._log):  # unless clear_requests() came in between
                if "status" in changes:
                    changes["answered"] = time.monotonic()
                self._log[position] = replace(self._log[position], **changes)
            self._cond.notify_all()

    # -- the event loop's side ------------------------------------------------------------

    async def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setblocking(False)
        try:
            listener.bind(("127.0.0.1", self._port))
            listener.listen(128)
        except OSError:
            listener.close()
            raise
        self._port = listener.getsockname()[1]
        self._listener = listener
        self._acceptor = asyncio.get_running_loop().create_task(self._accept_loop(listener))

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sock, _ = await loop.sock_accept(listener)
            # Without it each answer written in two pieces waits out the client's
            # delayed ACK (~40 ms a request); asyncio sets it only on sockets it accepts.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = loop.create_task(self._serve(sock))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _unlisten(self, drop_connections: bool) -> None:
        if self._acceptor is not None:
            self._acceptor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._acceptor
        if self._listener is not None:
            self._listener.close()
        self._acceptor = self._listener = None
        if drop_connections:
            for client in list(self._clients):
                client.writer.transport.abort()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _shutdown(self) -> None:
        await self._unlisten(drop_connections=True)
        await asyncio.get_running_loop().shutdown_default_executor()

    async def _serve(self, sock: socket.socket) -> None:
        """One client connection: its requests in turn, until one ends it."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_LIMIT)
        protocol = _Protocol(reader)
        try:
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
        except BaseException:
            sock.close()
            raise
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        with self._cond:
            self._accepted += 1
            self._active += 1
            client = _Client(self._accepted, sock, reader, writer, protocol.hung_up)
            self._cond.notify_all()
        try:
            self._clients.add(client)
            while await self._exchange(client):
                pass
        except _NETWORK_ERRORS:
            pass
        finally:
            self._clients.discard(client)
            await _close(writer)
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    async def _exchange(self, client: _Client) -> bool:
        """Read one request and act on it; True if the connection goes on."""
        raw = await read_head(client.reader)
        if raw is None:
            return False
        request = parse_message(raw)
        fault, position = self._admit(client, request)
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
            up_reader, up_writer = await asyncio.open_connection(*self.upstream, limit=_LIMIT)
        except OSError:
            return await self._answer(client, request, _BAD_GATEWAY, position)
        up_writer.transport.set_write_buffer_limits(0)  # drain() waits until all is sent
        try:
            return await self._relay(client, request, fault, position, up_reader, up_writer)
        finally:
            await _close(up_writer, abort=True)

    async def _deliver_late(
        self, client: _Client, request: Message, fault: Fault, pos: int
    ) -> None:
        """Read the request whole, answer nothing, and forward it once `fault.seconds` have
        passed (the client has likely hung up by then); the server's answer is dropped."""
        if request.expects_continue:
            client.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = bytearray()

        async def keep(data: bytes) -> None:
            body.extend(data)

        await copy_body(client.reader, request_framing(request), keep)
        await client.waits_out(fault.seconds)
        await asyncio.sleep(max(0.0, fault.seconds - (time.monotonic() - self._started(pos))))
        up_reader, up_writer = await asyncio.open_connection(*self.upstream, limit=_LIMIT)
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
            self._note(pos, status=response.status)
            await copy_body(up_reader, response_framing(response, request.method), discard)
        finally:
            await _close(up_writer, abort=True)

    def _started(self, position: int) -> float:
        with self._cond:
            return self._log[position].started if position < len(self._log) else 0.0

    async def _answer(self, client: _Client, request: Message, fault: Fault, pos: int) -> bool:
        """A synthetic S3 error. With Expect: 100-continue the client holds its body back,
        so the connection is closed after the answer instead."""
        keep = not request.expects_continue and not request.has_token("connection", "close")
        if not request.expects_continue:
            await copy_body(client.reader, request_framing(request), discard)
        self._note(pos, status=fault.status)  # noted before the client can see it
        request_id = f"FAULTPROXY{pos + 1:08d}"
        client.writer.write(
            s3_error_answer(request, fault.status, fault.code, fault.message, request_id, keep=keep)
        )
        if not keep:
            await client.linger_close()
        return keep

    async def _relay(
        self,
        client: _Client,
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
                self._note(pos, interim=tuple(interim))
                client.writer.write(raw)
            self._note(pos, status=response.status)  # the server has applied the request
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
                await _cancel(pump)
                await client.linger_close()  # answered early: the client keeps its body
                return False
            return await pump and keep_alive(request, response, framing)
        finally:
            await _cancel(pump)

    async def _pump(
        self, client: _Client, request: Message, up_writer: asyncio.StreamWriter, cut: int | None
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
        except _NETWORK_ERRORS:
            up_writer.transport.abort()  # wakes _relay, which waits for the answer
            client.writer.transport.abort()
            return False
        return True


@pytest.fixture
def fault_proxy(seaweed: SeaweedServer) -> Iterator[FaultProxy]:
    """A FaultProxy in front of the session's SeaweedFS S3 server, stopped after the test."""
    assert seaweed.port is not None
    with FaultProxy("127.0.0.1", seaweed.port) as proxy:
        yield proxy
