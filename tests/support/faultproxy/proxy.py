"""A fault-injecting HTTP/1.1 proxy for tests against a real S3 server (SeaweedFS).

`FaultProxy` listens on a free loopback port and forwards each request to the upstream
server over an upstream connection of its own, while the client keeps its keep-alive
connection to the proxy. Rules (`add_rule`) pick the requests a `Fault` applies to, so a
test can reset, stall, delay, cut or fail the exact S3 operation it studies, and check in
`requests` what reached the proxy and what it did. The event loop runs in a thread of its
own; `stop()` closes every socket and joins it, so nothing outlives a test. One upstream
connection per request keeps the server's side simple: no stale pooled connection can
fail a request the test did not mean to fail. If the server cannot be reached, the client
gets a 502 BadGateway. Here: the proxy's lifecycle, listening and connections; one
request's handling is in relay, the rules and request log in traffic, connection
primitives in connection, HTTP framing in http_messages, faults and rules in rules
(re-exported here).

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
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from tests.support.faultproxy.connection import (
    LIMIT,
    NETWORK_ERRORS,
    Client,
    HangUpProtocol,
    close,
)
from tests.support.faultproxy.relay import Relay
from tests.support.faultproxy.rules import (
    Fault,
    FaultKind,
    HeaderPredicate,
    ProxyStats,
    RequestRecord,
    Rule,
)
from tests.support.faultproxy.traffic import Traffic

if TYPE_CHECKING:
    from objectstore_s3.server.seaweedfs import SeaweedServer

__all__ = ["Fault", "FaultKind", "FaultProxy", "ProxyStats", "RequestRecord", "Rule", "fault_proxy"]

T = TypeVar("T")


class FaultProxy:
    """A TCP proxy on 127.0.0.1 that parses HTTP/1.1 and applies faults per request."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._traffic = Traffic()
        self._relay = Relay(self.upstream, self._traffic)
        self._port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._acceptor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._clients: set[Client] = set()

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

    # -- rules and introspection (traffic.py) --------------------------------------------

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
        return self._traffic.add_rule(fault, method, path, query, header, times)

    def clear_rules(self) -> None:
        self._traffic.clear_rules()

    def clear_requests(self) -> None:
        self._traffic.clear_requests()

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the requests read so far, in arrival order."""
        return self._traffic.requests

    @property
    def stats(self) -> ProxyStats:
        return self._traffic.stats

    def wait_for(self, predicate: Callable[[FaultProxy], bool], timeout: float = 5.0) -> None:
        """Block until `predicate(self)` holds (checked at each change); TimeoutError if not."""
        self._traffic.wait_for(lambda: predicate(self), timeout)

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
        reader = asyncio.StreamReader(limit=LIMIT)
        protocol = HangUpProtocol(reader)
        try:
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
        except BaseException:
            sock.close()
            raise
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        client = Client(self._traffic.opened(), sock, reader, writer, protocol.hung_up)
        try:
            self._clients.add(client)
            while await self._relay.exchange(client):
                pass
        except NETWORK_ERRORS:
            pass
        finally:
            self._clients.discard(client)
            await close(writer)
            self._traffic.closed()


@pytest.fixture
def fault_proxy(seaweed: SeaweedServer) -> Iterator[FaultProxy]:
    """A FaultProxy in front of the session's SeaweedFS S3 server, stopped after the test."""
    assert seaweed.port is not None
    with FaultProxy("127.0.0.1", seaweed.port) as proxy:
        yield proxy
