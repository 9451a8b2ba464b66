"""Raw boto3 through the fault proxy, for the proxy's own tests (tests/faults/
test_faultproxy*.py): a client that makes one attempt per call, the `bucket` (one a module,
on the session's SeaweedFS), `direct` (around the proxy: what the server really holds),
`client` (through it) and `key` fixtures, which tests/faults/conftest.py makes available.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from objectstore_s3.server.seaweedfs import SeaweedServer
from tests.support.faultproxy import Fault, FaultProxy, RequestRecord

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

READ_TIMEOUT = 1.0


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


def failed_put(
    proxy: FaultProxy,
    client: S3Client,
    fault: Fault,
    error: type[Exception],
    where: tuple[str, str],
    body: bytes = b"v",
    times: int | None = None,
) -> list[RequestRecord]:
    """With `fault` on the PUTs (the first `times`, or all), a put of `body` at `where`
    (bucket, key) through the proxy raises `error`; the requests the proxy has read."""
    proxy.add_rule(fault, method="PUT", times=times)
    bucket, key = where
    with pytest.raises(error):
        client.put_object(Bucket=bucket, Key=key, Body=body)
    return proxy.requests
