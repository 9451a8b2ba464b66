"""The fault proxy's own tests: each fault as raw boto3 sees it through the proxy.

The seaweedfs-marked tests put `fault_proxy` in front of the session's SeaweedFS server
and check both what the client raised and what the server holds (read directly, around
the proxy), so a fault is known to hit before or after the server applied the request.
The client makes one attempt per call (no retries), so each fault is seen exactly once.
The others check HTTP framing (chunked, until-close) against a small stdlib server.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import botocore.exceptions
import psutil
import pytest
from botocore.config import Config

from objectstore_s3.server.seaweedfs import SeaweedServer
from tests.support.faultproxy import Fault, FaultProxy

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
READ_TIMEOUT = 1.0
seaweedfs = pytest.mark.seaweedfs


def s3_client(url: str, server: SeaweedServer, read_timeout: float = READ_TIMEOUT) -> S3Client:
    """A client that makes exactly one attempt per call. (botocore's `max_attempts` counts
    retries, so max_attempts=1 would still try twice: total_max_attempts is the total.)"""
    config = Config(
        retries={"total_max_attempts": 1},
        connect_timeout=1,
        read_timeout=read_timeout,
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        config=config,
    )


@pytest.fixture(scope="module")
def bucket(seaweed: SeaweedServer) -> Iterator[str]:
    name = f"faultproxy-{uuid.uuid4().hex[:10]}"
    direct = s3_client(seaweed.url, seaweed, read_timeout=30)
    direct.create_bucket(Bucket=name)
    # The first write to a bucket grows a SeaweedFS volume, which can take longer than the
    # proxied client's short read timeout on a busy machine: pay for it here.
    direct.put_object(Bucket=name, Key="warm-up", Body=b"")
    yield name
    for upload in direct.list_multipart_uploads(Bucket=name).get("Uploads", []):
        direct.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in direct.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            direct.delete_object(Bucket=name, Key=item["Key"])
    direct.delete_bucket(Bucket=name)


@pytest.fixture
def direct(seaweed: SeaweedServer) -> S3Client:
    """A client straight to SeaweedFS: what the server really holds."""
    return s3_client(seaweed.url, seaweed, read_timeout=30)


@pytest.fixture
def client(fault_proxy: FaultProxy, seaweed: SeaweedServer) -> S3Client:
    """A client through the proxy."""
    return s3_client(fault_proxy.url, seaweed)


@pytest.fixture
def key() -> str:
    return f"k-{uuid.uuid4().hex}"


def exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] == "404":
            return False
        raise
    return True


def error_code(exc: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


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
def test_reset_before_forwarding_loses_the_request(
    fault_proxy: FaultProxy, client: S3Client, direct: S3Client, bucket: str, key: str
) -> None:
    fault_proxy.add_rule(Fault.reset(), method="PUT")
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        client.put_object(Bucket=bucket, Key=key, Body=b"v")
    (record,) = fault_proxy.requests
    assert (record.fault, record.status) == ("reset", None)
    assert not exists(direct, bucket, key)


@seaweedfs
def test_reset_after_forwarding_hides_an_applied_put(
    fault_proxy: FaultProxy, client: S3Client, direct: S3Client, bucket: str, key: str
) -> None:
    fault_proxy.add_rule(Fault.reset_after(), method="PUT")
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        client.put_object(Bucket=bucket, Key=key, Body=b"applied")
    (record,) = fault_proxy.requests
    assert (record.fault, record.status) == ("reset_after", 200)
    assert direct.get_object(Bucket=bucket, Key=key)["Body"].read() == b"applied"


@seaweedfs
def test_blackhole_times_out_and_is_let_go(
    fault_proxy: FaultProxy, client: S3Client, bucket: str, key: str
) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=b"v")
    fault_proxy.add_rule(Fault.blackhole(), method="GET")
    started = time.monotonic()
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        client.get_object(Bucket=bucket, Key=key)
    assert READ_TIMEOUT * 0.9 <= time.monotonic() - started < READ_TIMEOUT + 3
    assert fault_proxy.requests[-1].fault == "blackhole"
    assert fault_proxy.requests[-1].status is None
    # The client drops a timed-out connection; the proxy then closes its side.
    fault_proxy.wait_for(lambda proxy: proxy.stats.active == 0)


@seaweedfs
def test_delayed_response_hides_an_applied_put(
    fault_proxy: FaultProxy, client: S3Client, direct: S3Client, bucket: str, key: str
) -> None:
    fault_proxy.add_rule(Fault.delay_response(60), method="PUT")
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        client.put_object(Bucket=bucket, Key=key, Body=b"late")
    # The server answered 200 before the proxy started to hold the answer back.
    fault_proxy.wait_for(lambda proxy: proxy.requests[-1].status == 200)
    assert direct.get_object(Bucket=bucket, Key=key)["Body"].read() == b"late"
    fault_proxy.wait_for(lambda proxy: proxy.stats.active == 0)  # not held for 60 s


@seaweedfs
def test_delayed_request_arrives_late(
    fault_proxy: FaultProxy, client: S3Client, bucket: str, key: str
) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=b"v")
    fault_proxy.add_rule(Fault.delay_request(0.3), method="GET", times=1)
    started = time.monotonic()
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"v"
    assert time.monotonic() - started >= 0.29
    assert fault_proxy.requests[-1].fault == "delay_request"


@seaweedfs
def test_delayed_request_is_dropped_when_the_client_gives_up(
    fault_proxy: FaultProxy, client: S3Client, direct: S3Client, bucket: str, key: str
) -> None:
    fault_proxy.add_rule(Fault.delay_request(60), method="PUT")
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        client.put_object(Bucket=bucket, Key=key, Body=b"never")
    fault_proxy.wait_for(lambda proxy: proxy.stats.active == 0)  # dropped, not forwarded
    assert fault_proxy.requests[-1].status is None
    assert not exists(direct, bucket, key)


@seaweedfs
def test_late_delivery_applies_a_put_after_the_client_gave_up(
    fault_proxy: FaultProxy, client: S3Client, direct: S3Client, bucket: str, key: str
) -> None:
    fault_proxy.add_rule(Fault.deliver_late(1.5), method="PUT", times=1)
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        client.put_object(Bucket=bucket, Key=key, Body=b"late")
    assert not exists(direct, bucket, key)  # the client gave up before the server saw it
    fault_proxy.wait_for(lambda proxy: proxy.requests[-1].status == 200)
    assert direct.get_object(Bucket=bucket, Key=key)["Body"].read() == b"late"
    record = fault_proxy.requests[-1]
    assert record.answered is not None
    assert record.answered - record.started >= 1.5


@seaweedfs
def test_cut_response_body_fails_the_read(
    fault_proxy: FaultProxy, client: S3Client, bucket: str, key: str
) -> None:
    data = bytes(range(256)) * 400
    client.put_object(Bucket=bucket, Key=key, Body=data)
    fault_proxy.add_rule(Fault.cut_response(1000), method="GET", times=2)

    whole = client.get_object(Bucket=bucket, Key=key)  # status and headers arrive intact
    assert whole["ContentLength"] == len(data)
    with pytest.raises(botocore.exceptions.ResponseStreamingError, match="IncompleteRead"):
        whole["Body"].read()

    chunks = client.get_object(Bucket=bucket, Key=key)["Body"]
    with pytest.raises(botocore.exceptions.IncompleteReadError, match="1000 read"):
        for _ in chunks.iter_chunks(4096):
            pass

    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == data  # rule spent


@seaweedfs
def test_cut_listing_reads_as_a_500(
    fault_proxy: FaultProxy, client: S3Client, bucket: str, key: str
) -> None:
    """botocore reads non-streaming bodies without checking their length, and takes a 200
    whose XML does not parse for a 500 (a retryable error)."""
    client.put_object(Bucket=bucket, Key=key, Body=b"v")
    fault_proxy.add_rule(Fault.cut_response(50), method="GET", query="list-type=2")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.list_objects_v2(Bucket=bucket)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert fault_proxy.requests[-1].status == 200  # the server's real answer


@seaweedfs
def test_cut_upload_creates_nothing(
    fault_proxy: FaultProxy, client: S3Client, direct: S3Client, bucket: str, key: str
) -> None:
    fault_proxy.add_rule(Fault.cut_upload(1000), method="PUT")
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        client.put_object(Bucket=bucket, Key=key, Body=b"x" * 100_000)
    assert fault_proxy.requests[-1].fault == "cut_upload"
    assert not exists(direct, bucket, key)


@seaweedfs
@pytest.mark.parametrize(
    ("fault", "status"),
    [(Fault.internal_error(), 500), (Fault.service_unavailable(), 503), (Fault.slow_down(), 503)],
)
def test_synthetic_s3_errors_never_reach_the_server(
    fault_proxy: FaultProxy,
    client: S3Client,
    direct: S3Client,
    bucket: str,
    key: str,
    fault: Fault,
    status: int,
) -> None:
    fault_proxy.add_rule(fault)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.put_object(Bucket=bucket, Key=key, Body=b"v")
    assert error_code(caught) == fault.code
    metadata = caught.value.response["ResponseMetadata"]
    assert (metadata["HTTPStatusCode"], metadata["RequestId"]) == (status, "FAULTPROXY00000001")
    assert metadata["HTTPHeaders"]["content-type"] == "application/xml"
    # A HEAD answer has no body, so botocore only has the status for a code.
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.head_object(Bucket=bucket, Key=key)
    assert error_code(caught) == str(status)
    assert [r.status for r in fault_proxy.requests] == [status, status]
    assert not exists(direct, bucket, key)


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


@seaweedfs
def test_multipart_upload_with_only_part_two_cut(
    fault_proxy: FaultProxy, client: S3Client, direct: S3Client, bucket: str, key: str
) -> None:
    parts = [bytes([1]) * (5 * MiB), bytes([2]) * (5 * MiB)]
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    fault_proxy.add_rule(Fault.cut_upload(MiB), method="PUT", query="partNumber=2", times=1)
    etag1 = client.upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=parts[0]
    )["ETag"]
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=2, Body=parts[1])
    listed = direct.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert [part["PartNumber"] for part in listed.get("Parts", [])] == [1]

    etag2 = client.upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=2, Body=io.BytesIO(parts[1])
    )["ETag"]
    client.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": etag1}, {"PartNumber": 2, "ETag": etag2}]
        },
    )
    assert direct.get_object(Bucket=bucket, Key=key)["Body"].read() == b"".join(parts)
    part_requests = [r for r in fault_proxy.requests if "partNumber" in r.query]
    assert [("partNumber=2" in r.query, r.fault) for r in part_requests] == [
        (False, None),
        (True, "cut_upload"),
        (True, None),
    ]


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


# -- HTTP framing against a stdlib upstream (no SeaweedFS) ---------------------------------
