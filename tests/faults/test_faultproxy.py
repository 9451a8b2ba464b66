"""The fault proxy's own tests, with raw boto3 through it (tests/support/proxied_s3.py):
requests pass through on one keep-alive connection, refuse and accept, rules (applied in
order, once, on the request they match), and stop leaves nothing behind. Each fault as
boto3 sees it is in test_faultproxy_faults.py; HTTP framing against a stdlib upstream in
test_faultproxy_framing.py.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import TYPE_CHECKING

import botocore.exceptions
import psutil
import pytest

from objectstore_s3.server.seaweedfs import SeaweedServer
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.proxied_s3 import error_code, s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
seaweedfs = pytest.mark.seaweedfs


@seaweedfs
def test_requests_pass_through_on_one_keep_alive_connection(
    fault_proxy: FaultProxy, client: S3Client, bucket: str, key: str
) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=b"hello")
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"hello"
    listed = client.list_objects_v2(Bucket=bucket, Prefix=key)
    assert [item["Key"] for item in listed["Contents"]] == [key]
    assert client.head_object(Bucket=bucket, Key=key)["ContentLength"] == 5
    client.delete_object(Bucket=bucket, Key=key)

    records = fault_proxy.requests
    assert [r.method for r in records] == ["PUT", "GET", "GET", "HEAD", "DELETE"]
    assert [r.status for r in records] == [200, 200, 200, 200, 204]
    assert {r.connection for r in records} == {1}
    assert [r.index for r in records] == [1, 2, 3, 4, 5]
    assert all(r.fault is None for r in records)
    # botocore sends PUT bodies with Expect: 100-continue; the server's 100 went through.
    assert records[0].headers["expect"] == "100-continue"
    assert records[0].interim == (100,)
    assert "prefix=" in records[2].query


@seaweedfs
def test_refuse_closes_the_port_until_accept(
    fault_proxy: FaultProxy, client: S3Client, seaweed: SeaweedServer, bucket: str
) -> None:
    client.head_bucket(Bucket=bucket)  # leaves a pooled keep-alive connection
    url = fault_proxy.url
    fault_proxy.refuse()
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        client.head_bucket(Bucket=bucket)
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        s3_client(url, seaweed).head_bucket(Bucket=bucket)
    assert fault_proxy.stats.active == 0
    fault_proxy.accept()
    assert fault_proxy.url == url
    client.head_bucket(Bucket=bucket)
    assert fault_proxy.stats.accepted == 2
    assert len(fault_proxy.requests) == 2  # refused attempts never reach the proxy


@seaweedfs
def test_rule_with_times_one_applies_once_and_the_retry_passes(
    fault_proxy: FaultProxy, client: S3Client, direct: S3Client, bucket: str, key: str
) -> None:
    rule = fault_proxy.add_rule(Fault.slow_down(), method="PUT", times=1)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.put_object(Bucket=bucket, Key=key, Body=b"v")
    assert error_code(caught) == "SlowDown"
    client.put_object(Bucket=bucket, Key=key, Body=b"v")
    assert (rule.applied, rule.remaining) == (1, 0)
    assert [r.fault for r in fault_proxy.requests] == ["SlowDown", None]
    assert fault_proxy.stats.faults == {"SlowDown": 1}
    assert direct.get_object(Bucket=bucket, Key=key)["Body"].read() == b"v"


@seaweedfs
def test_fault_on_the_second_request_of_a_keep_alive_connection_only(
    fault_proxy: FaultProxy, client: S3Client, bucket: str, key: str
) -> None:
    fault_proxy.add_rule(Fault.service_unavailable(), method="GET", times=1)
    client.put_object(Bucket=bucket, Key=key, Body=b"v")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.get_object(Bucket=bucket, Key=key)
    assert error_code(caught) == "ServiceUnavailable"
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"v"
    records = fault_proxy.requests
    assert [(r.connection, r.index, r.fault) for r in records] == [
        (1, 1, None),
        (1, 2, "ServiceUnavailable"),
        (1, 3, None),
    ]


@seaweedfs
def test_rules_apply_in_order_and_match_on_path_query_and_headers(
    fault_proxy: FaultProxy, client: S3Client, bucket: str, key: str
) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=b"0123456789")
    fault_proxy.add_rule(Fault.internal_error(), path=f"/{key}$", times=1)
    fault_proxy.add_rule(Fault.slow_down(), method="GET", header=lambda h: "range" in h)
    fault_proxy.add_rule(Fault.service_unavailable(), query="list-type=2")

    def code(call: object) -> str | None:
        try:
            assert callable(call)
            call()
        except botocore.exceptions.ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return None

    ranged = lambda: client.get_object(Bucket=bucket, Key=key, Range="bytes=0-1")  # noqa: E731
    assert code(ranged) == "InternalError"  # first rule first, even though the second matches
    assert code(ranged) == "SlowDown"  # the first is spent
    assert code(lambda: client.get_object(Bucket=bucket, Key=key)) is None
    assert code(lambda: client.list_objects_v2(Bucket=bucket)) == "ServiceUnavailable"
    fault_proxy.clear_rules()
    assert code(ranged) is None
    assert fault_proxy.stats.faults == {"InternalError": 1, "SlowDown": 1, "ServiceUnavailable": 1}


def sockets_on(port: int) -> set[tuple[object, object]]:
    """This process's open TCP sockets with `port` at either end, as (local, remote)."""
    return {
        (conn.laddr, conn.raddr)
        for conn in psutil.Process().net_connections(kind="tcp")
        if port in (conn.laddr.port, getattr(conn.raddr, "port", None))
    }


@seaweedfs
def test_stop_closes_held_connections_and_leaves_no_thread_or_socket(
    seaweed: SeaweedServer,
) -> None:
    assert seaweed.port is not None
    fds, upstream_sockets = psutil.Process().num_fds(), sockets_on(seaweed.port)
    proxy = FaultProxy("127.0.0.1", seaweed.port).start()
    proxy.add_rule(Fault.blackhole(), path="^/held$")
    proxy.add_rule(Fault.delay_response(60), path="^/late$")
    held = [socket.create_connection(("127.0.0.1", proxy.port)) for _ in range(2)]
    try:
        for sock, path in zip(held, ["/held", "/late"], strict=True):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        # Both read; the late one has its (403) answer from the server and holds it back.
        proxy.wait_for(lambda p: len(p.requests) == 2 and p.requests[1].status is not None)
        assert proxy.stats.active == 2
        started = time.monotonic()
        proxy.stop()
        assert time.monotonic() - started < 5
        for sock in held:
            sock.settimeout(5)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1024) == b""  # closed, and nothing was answered
    finally:
        for sock in held:
            sock.close()
    assert not [t for t in threading.enumerate() if t.name == "faultproxy"]
    assert sockets_on(proxy.port) == set()
    assert sockets_on(seaweed.port) <= upstream_sockets  # the held upstream one is closed
    assert psutil.Process().num_fds() <= fds  # the loop's selector and self-pipe too
    proxy.stop()  # a second stop is harmless
