"""botocore's errors, classified for the retry loop and translated into ours: one table.

`classify` says what a failure means for a retry (was the request even sent? may it have
been applied?); `translate` turns it into the `ObjectStoreError` subclass a user
catches, with a message that names the way out. Both are used only by `s3.py`, which
chains the original error (`raise ... from exc`).
"""

from __future__ import annotations

import enum
from typing import Protocol

import botocore.exceptions as bce

from .errors import (
    BucketNotFoundError,
    KeyNotFoundError,
    ObjectStoreError,
    OutcomeUnknownError,
    PreconditionFailedError,
    StoragePermissionError,
    StorageUnavailableError,
)

__all__ = ["Failure", "classify", "translate", "unknown_outcome"]


class _Endpoint(Protocol):
    endpoint: str
    bucket: str


class Failure(enum.Enum):
    """What a failed request means for retrying it."""

    NOT_SENT = "not sent"  # connection refused / connect timeout: nothing reached the server
    NETWORK = "network"  # sent, then the connection failed: it may have been applied
    THROTTLED = "throttled"  # 503 / SlowDown: refused before being applied
    SERVER = "server"  # 500 / 502 / 504: the server failed, perhaps after applying
    PRECONDITION = "precondition"  # 412 (or 409 conditional conflict)
    NOT_MODIFIED = "not modified"  # 304
    NOT_FOUND = "not found"
    FINAL = "final"  # denied, bad request, no bucket...: retrying cannot help

    @property
    def retryable(self) -> bool:
        return self in (Failure.NOT_SENT, Failure.NETWORK, Failure.THROTTLED, Failure.SERVER)

    @property
    def maybe_applied(self) -> bool:
        return self in (Failure.NETWORK, Failure.SERVER)


_NOT_SENT = (bce.EndpointConnectionError, bce.ConnectTimeoutError)
_NETWORK = (
    bce.ReadTimeoutError,
    bce.ConnectionClosedError,
    bce.ResponseStreamingError,
    bce.IncompleteReadError,
    bce.HTTPClientError,
    ConnectionError,
    TimeoutError,
)
_CREDENTIALS = (bce.NoCredentialsError, bce.PartialCredentialsError)

_BY_CODE: dict[str, Failure] = {
    **dict.fromkeys(("SlowDown", "ServiceUnavailable", "503", "Throttling"), Failure.THROTTLED),
    **dict.fromkeys(
        ("InternalError", "RequestTimeout", "500", "502", "504", "BadGateway"), Failure.SERVER
    ),
    **dict.fromkeys(
        ("PreconditionFailed", "412", "ConditionalRequestConflict"), Failure.PRECONDITION
    ),
    **dict.fromkeys(("304", "NotModified"), Failure.NOT_MODIFIED),
    **dict.fromkeys(("NoSuchKey", "NotFound", "404"), Failure.NOT_FOUND),
}


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, _NOT_SENT):
        return Failure.NOT_SENT
    if isinstance(exc, bce.ClientError):
        return _BY_CODE.get(_code(exc) or "", Failure.FINAL)
    if isinstance(exc, _NETWORK):
        return Failure.NETWORK
    return Failure.FINAL


# (error class, message): the one translation table.
_DENIED = (
    StoragePermissionError,
    "The S3 server denied {operation} of '{key}' ({code}). Check that the credentials are "
    "valid and that their policy allows it (examples in infra/).",
)
_UNAVAILABLE = (
    StorageUnavailableError,
    "The S3 server at {endpoint} failed {operation} of '{key}' ({code}) after "
    "{attempts} attempt(s); try again later or check the server's health.",
)
_TABLE: dict[str, tuple[type[ObjectStoreError], str]] = {
    "NoSuchBucket": (
        BucketNotFoundError,
        "Bucket '{bucket}' does not exist at {endpoint}. Create it (e.g. `aws s3 mb "
        "s3://{bucket}`) or set OBJECTSTORE_BUCKET to an existing bucket.",
    ),
    **dict.fromkeys(
        ("PreconditionFailed", "412", "ConditionalRequestConflict"),
        (PreconditionFailedError, "{operation} of '{key}': the object is not as expected"),
    ),
    **dict.fromkeys(
        (
            "AccessDenied",
            "403",
            "Forbidden",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "InvalidToken",
            "ExpiredToken",
            "AllAccessDisabled",
        ),
        _DENIED,
    ),
    **dict.fromkeys(
        (
            "SlowDown",
            "ServiceUnavailable",
            "Throttling",
            "InternalError",
            "RequestTimeout",
            "BadGateway",
            "500",
            "502",
            "503",
            "504",
        ),
        _UNAVAILABLE,
    ),
}


def translate(
    where: _Endpoint, exc: BaseException, operation: str, key: str, attempts: int
) -> BaseException:
    """Our error for `exc` (a programming error is returned unchanged, to be re-raised)."""
    if isinstance(exc, ObjectStoreError):
        return exc
    if isinstance(exc, _CREDENTIALS):
        return StoragePermissionError(
            f"No usable S3 credentials for {where.endpoint}: set OBJECTSTORE_ACCESS_KEY_ID "
            "and OBJECTSTORE_SECRET_ACCESS_KEY, or configure an AWS profile or role."
        )
    if isinstance(exc, _NOT_SENT):
        return StorageUnavailableError(
            f"Cannot reach the S3 endpoint {where.endpoint} for {operation} of '{key}' after "
            f"{attempts} attempt(s) ({type(exc).__name__}). Check that the server is running "
            "and OBJECTSTORE_ENDPOINT_URL points at it."
        )
    if isinstance(exc, _NETWORK):
        return StorageUnavailableError(
            f"The connection to {where.endpoint} failed during {operation} of '{key}' after "
            f"{attempts} attempt(s) ({type(exc).__name__}); check the network and the "
            "server, or raise OBJECTSTORE_READ_TIMEOUT_SECONDS / OBJECTSTORE_MAX_ATTEMPTS."
        )
    if not isinstance(exc, bce.ClientError):
        return exc
    code = _code(exc) or "Unknown"
    if classify(exc) is Failure.NOT_FOUND:
        return KeyNotFoundError(key)
    error_class, template = _TABLE.get(
        code, (ObjectStoreError, "S3 {operation} of '{key}' failed: {code}: {message}")
    )
    return error_class(
        template.format(
            operation=operation,
            key=key,
            code=code,
            message=exc.response.get("Error", {}).get("Message", ""),
            bucket=where.bucket,
            endpoint=where.endpoint,
            attempts=attempts,
        )
    )


def unknown_outcome(
    where: _Endpoint, operation: str, key: str, attempts: int, expected: str
) -> OutcomeUnknownError:
    return OutcomeUnknownError(
        f"The S3 server at {where.endpoint} did not answer {operation} of '{key}' after "
        f"{attempts} attempt(s); it may or may not have been applied. Try again later.",
        expected_etag=expected,
    )


def _code(exc: bce.ClientError) -> str | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if status in (304, 412):  # HEAD answers carry no error code, and servers differ
        return str(status)
    return str(exc.response.get("Error", {}).get("Code", "")) or (str(status) if status else None)
