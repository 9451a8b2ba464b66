"""The fault proxy's HTTP framing against a stdlib upstream (no S3 server): chunked and
until-close bodies on one connection, an early answer to 100-continue, cuts counted in wire
bytes, the framing rules, and a 502 when the server cannot be reached."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from objectstore_s3.server.processes import free_ports
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.faultproxy.http_messages import (
    Framing,
    copy_body,
    parse_message,
    response_framing,
)


class _Upstream(BaseHTTPRequestHandler):
    """Chunked and until-close answers, and an echo of a chunked request body's size."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "x-check")
            self.end_headers()
            self.wfile.write(b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-check: 1\r\n\r\n")
        else:  # until close: no length, and the connection ends the body
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until close")
            self.close_connection = True

    def handle_expect_100(self) -> bool:
        if self.path == "/early":  # answer before the body, as a server refusing it would
            return True
        return super().handle_expect_100()

    def do_PUT(self) -> None:
        if self.path == "/early":
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            return
        size = 0
        while (chunk := int(self.rfile.readline().split(b";")[0], 16)) > 0:
            size += len(self.rfile.read(chunk + 2)) - 2
        while self.rfile.readline() != b"\r\n":
            pass
        body = str(size).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def stdlib_proxy() -> Iterator[FaultProxy]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        with FaultProxy("127.0.0.1", server.server_address[1]) as proxy:
            yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_chunked_and_until_close_bodies_pass_on_one_connection(stdlib_proxy: FaultProxy) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", stdlib_proxy.port, timeout=5)
    try:
        conn.request("PUT", "/echo", body=iter([b"abc", b"defgh"]), encode_chunked=True)
        assert conn.getresponse().read() == b"8"
        conn.request("GET", "/chunked")
        answer = conn.getresponse()
        assert answer.read() == b"hello world"
        conn.request("GET", "/close")
        answer = conn.getresponse()
        assert answer.read() == b"until close"
        assert answer.will_close
    finally:
        conn.close()
    records = stdlib_proxy.requests
    assert [(r.connection, r.index, r.status) for r in records] == [
        (1, 1, 200),
        (1, 2, 200),
        (1, 3, 200),
    ]
    stdlib_proxy.wait_for(lambda proxy: proxy.stats.active == 0)


def test_an_answer_before_100_continue_does_not_wait_for_the_body(
    stdlib_proxy: FaultProxy,
) -> None:
    with socket.create_connection(("127.0.0.1", stdlib_proxy.port), timeout=5) as sock:
        sock.sendall(b"PUT /early HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n")
        sock.sendall(b"Content-Length: 10\r\n\r\n")  # and the body is never sent
        received = b""
        while data := sock.recv(4096):  # the proxy ends its side after the answer
            received += data
    assert received.startswith(b"HTTP/1.1 403 ")
    assert stdlib_proxy.requests[0].interim == ()
    stdlib_proxy.wait_for(lambda proxy: proxy.stats.active == 0)


def test_cut_counts_chunked_bodies_as_wire_bytes(stdlib_proxy: FaultProxy) -> None:
    stdlib_proxy.add_rule(Fault.cut_response(12), path="/chunked")
    with socket.create_connection(("127.0.0.1", stdlib_proxy.port), timeout=5) as sock:
        sock.sendall(b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while data := sock.recv(4096):
            received += data
    assert received.split(b"\r\n\r\n", 1)[1] == b"5;ext=1\r\nhel"


def test_framing_rules() -> None:
    def response(head: str) -> Framing:
        return response_framing(parse_message(head.encode(), response=True), "GET")

    assert response("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n").kind == "none"
    assert response("HTTP/1.1 304 Not Modified\r\n\r\n").kind == "none"
    assert response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n") == Framing("length", 5)
    assert response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").kind == (
        "chunked"
    )
    assert response("HTTP/1.1 200 OK\r\n\r\n").kind == "close"
    head = parse_message(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", response=True)
    assert response_framing(head, "HEAD").kind == "none"

    async def copy(data: bytes, framing: Framing) -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        out: list[bytes] = []

        async def sink(chunk: bytes) -> None:
            out.append(chunk)

        await copy_body(reader, framing, sink)
        return b"".join(out)

    wire = b"3\r\nabc\r\n0\r\nx-a: 1\r\n\r\n"
    assert asyncio.run(copy(wire + b"NEXT", Framing("chunked"))) == wire
    assert asyncio.run(copy(b"abcdef", Framing("length", 4))) == b"abcd"


def test_an_unreachable_server_is_a_502() -> None:
    (port,) = free_ports(1)
    with FaultProxy("127.0.0.1", port) as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        try:
            conn.request("GET", "/anything")
            answer = conn.getresponse()
            assert (answer.status, answer.getheader("content-type")) == (502, "application/xml")
            assert b"<Code>BadGateway</Code>" in answer.read()
        finally:
            conn.close()
        assert proxy.requests[0].status == 502
