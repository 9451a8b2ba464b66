"""Each fault of the fault proxy as raw boto3 sees it through the proxy, on the session's
SeaweedFS server: what the client raised and what the server holds (read directly, around
the proxy), so a fault is known to hit before or after the server applied the request.
The client makes one attempt per call (no retries), so each fault is seen exactly once.
"""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING

import botocore.exceptions
import pytest

from tests.support.faultproxy import Fault, FaultProxy
from tests.support.proxied_s3 import READ_TIMEOUT, error_code, exists, failed_put

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
seaweedfs = pytest.mark.seaweedfs
Closed = botocore.exceptions.ConnectionClosedError  # the connection was reset or cut
TimedOut = botocore.exceptions.ReadTimeoutError


@seaweedfs
def test_reset_before_forwarding_loses_the_request(
    fault_proxy: FaultProxy, client: S3Client, direct: S3Client, bucket: str, key: str
) -> None:
    (record,) = failed_put(fault_proxy, client, Fault.reset(), Closed, (bucket, key))
    assert (record.fault, record.status) == ("reset", None)
    assert not exists(direct, bucket, key)


@seaweedfs
def test_reset_after_forwarding_hides_an_applied_put(
    fault_proxy: FaultProxy, client: S3Client, direct: S3Client, bucket: str, key: str
) -> None:
    reset = Fault.reset_after()
    (record,) = failed_put(fault_proxy, client, reset, Closed, (bucket, key), b"applied")
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
    failed_put(fault_proxy, client, Fault.delay_response(60), TimedOut, (bucket, key), b"late")
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
    failed_put(fault_proxy, client, Fault.delay_request(60), TimedOut, (bucket, key), b"never")
    fault_proxy.wait_for(lambda proxy: proxy.stats.active == 0)  # dropped, not forwarded
    assert fault_proxy.requests[-1].status is None
    assert not exists(direct, bucket, key)


@seaweedfs
def test_late_delivery_applies_a_put_after_the_client_gave_up(
    fault_proxy: FaultProxy, client: S3Client, direct: S3Client, bucket: str, key: str
) -> None:
    late = Fault.deliver_late(1.5)
    failed_put(fault_proxy, client, late, TimedOut, (bucket, key), b"late", times=1)
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
    cut = Fault.cut_upload(1000)
    requests = failed_put(fault_proxy, client, cut, Closed, (bucket, key), b"x" * 100_000)
    assert requests[-1].fault == "cut_upload"
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
