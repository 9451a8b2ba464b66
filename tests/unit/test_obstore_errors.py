"""The obstore transport's one table of failures, without a server: how each exception of the
obstore library is classified for the retries and translated into the store's errors."""

from __future__ import annotations

import obstore.exceptions as oe
import pytest

from objectstore_s3 import (
    BucketNotFoundError,
    ObjectStoreError,
    StoragePermissionError,
    StorageUnavailableError,
)
from objectstore_s3.errors import (
    KeyNotFoundError,
    PreconditionFailedError,
)
from objectstore_s3.transport.failures import Failure
from objectstore_s3.transport.obstore.errors import classify, translate


class _Where:
    endpoint = "http://127.0.0.1:9"
    bucket = "the-bucket"


_DEBUG = "Generic S3 error: Error performing PUT http://127.0.0.1:9/b/k\n\nDebug source:\n"


@pytest.mark.parametrize(
    ("exc", "failure", "error"),
    [
        (oe.GenericError(_DEBUG + 'ConnectError("tcp connect error", ConnectionRefused)'),
         Failure.NOT_SENT, StorageUnavailableError),
        (oe.GenericError(_DEBUG + "HttpError { kind: Timeout, source: TimedOut }"),
         Failure.NETWORK, StorageUnavailableError),
        (oe.GenericError(_DEBUG + "kind: Interrupted, UnexpectedEof"),
         Failure.NETWORK, StorageUnavailableError),
        (oe.GenericError(_DEBUG + "inner: Status { status: 503, <Code>SlowDown</Code>"),
         Failure.THROTTLED, StorageUnavailableError),
        (oe.GenericError(_DEBUG + "inner: Status { status: 500, <Code>InternalError</Code>"),
         Failure.SERVER, StorageUnavailableError),
        (oe.GenericError(_DEBUG + "inner: Status { status: 400, <Code>InvalidRequest</Code>"),
         Failure.FINAL, ObjectStoreError),
        (oe.GenericError(_DEBUG + "status: 404, <Code>NoSuchBucket</Code>"),
         Failure.NO_BUCKET, BucketNotFoundError),
        (oe.GenericError(_DEBUG + "status: 403, <Code>AccessDenied</Code>"),
         Failure.DENIED, StoragePermissionError),
        (oe.PreconditionError("Request precondition failure"),
         Failure.PRECONDITION, PreconditionFailedError),
        (oe.AlreadyExistsError("Object at location k already exists"),
         Failure.PRECONDITION, PreconditionFailedError),
        (oe.NotModifiedError("Object at location k not modified"), Failure.NOT_MODIFIED,
         ObjectStoreError),
        (oe.PermissionDeniedError("<Code>SignatureDoesNotMatch</Code>"), Failure.DENIED,
         StoragePermissionError),
        (oe.UnauthenticatedError("401"), Failure.DENIED, StoragePermissionError),
        (FileNotFoundError("Object at location k not found: <Code>NoSuchKey</Code>"),
         Failure.NOT_FOUND, KeyNotFoundError),
        (FileNotFoundError("not found: <Code>NoSuchBucket</Code>"), Failure.NO_BUCKET,
         BucketNotFoundError),
    ],
)  # fmt: skip
def test_one_table_classifies_and_translates(
    exc: BaseException, failure: Failure, error: type[ObjectStoreError]
) -> None:
    assert classify(exc) is failure
    ours = translate(_Where(), exc, "write", "k", 3)
    assert type(ours) is error
    assert "Debug source" not in str(ours)  # obstore's debug dump stays in the cause


def test_programming_errors_are_not_translated() -> None:
    bug = TypeError("a bug")
    assert translate(_Where(), bug, "write", "k", 1) is bug
