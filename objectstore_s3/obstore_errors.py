"""obstore's errors, classified for the retry loop and translated into ours: one table.

obstore raises a handful of classes (`PreconditionError`, `PermissionDeniedError`, the
builtin `FileNotFoundError`, ...) and one catch-all, `GenericError`, for refused
connections, timeouts, cut bodies and 5xx alike; only its message tells them apart (the
Rust error's debug text: `ConnectError(...)` for a request that never left, `status: 503`
for a server answer). `classify` says what a failure means for a retry, `translate` turns
it into the `ObjectStoreError` a user catches, with a message that names the way out
(the wording of s3errors.py, so both transports read alike). Used only by
obstore_client.py and obstore_backend.py, which chain the original (`raise ... from exc`).
"""

from __future__ import annotations

import enum
import re
from typing import Protocol

from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    GenericError,
    NotModifiedError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)

from .errors import (
    BucketNotFoundError,
    KeyNotFoundError,
    ObjectStoreError,
    OutcomeUnknownError,
    PreconditionFailedError,
    StoragePermissionError,
    StorageUnavailableError,
)

__all__ = ["Failure", "classify", "no_credentials", "translate", "unknown_outcome"]


class _Endpoint(Protocol):
    endpoint: str
    bucket: str


class Failure(enum.Enum):
    """What a failed request means for retrying it (as in s3errors.py)."""

    NOT_SENT = "not sent"  # connection refused / connect timeout: nothing reached the server
    NETWORK = "network"  # sent, then the connection failed or timed out: it may have applied
    THROTTLED = "throttled"  # 503 / 429: refused before being applied
    SERVER = "server"  # 500 / 502 / 504: the server failed, perhaps after applying
    PRECONDITION = "precondition"  # 412, or 409 (a conditional write racing another)
    NOT_MODIFIED = "not modified"  # 304
    NOT_FOUND = "not found"
    NO_BUCKET = "no bucket"
    DENIED = "denied"  # 401 / 403
    FINAL = "final"  # bad request, unsupported answer...: retrying cannot help

    @property
    def retryable(self) -> bool:
        return self in (Failure.NOT_SENT, Failure.NETWORK, Failure.THROTTLED, Failure.SERVER)

    @property
    def maybe_applied(self) -> bool:
        return self in (Failure.NETWORK, Failure.SERVER)


# The debug text of a connect failure (refused, unresolvable, connect timeout) always
# holds hyper's `ConnectError(...)`; a read timeout or a cut answer never does.
_CONNECT = "ConnectError("
_STATUS = re.compile(r"\bstatus: (\d{3})\b")
_CODE = re.compile(r"<Code>([^<]+)</Code>")
# Statuses of answers obstore leaves generic (listings: every failure is generic).
_BY_STATUS = {
    304: Failure.NOT_MODIFIED,
    **dict.fromkeys((401, 403), Failure.DENIED),
    404: Failure.NOT_FOUND,
    **dict.fromkeys((409, 412), Failure.PRECONDITION),
    **dict.fromkeys((429, 503), Failure.THROTTLED),
    **dict.fromkeys((500, 502, 504), Failure.SERVER),
}


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, FileNotFoundError | BaseError) and "<Code>NoSuchBucket<" in str(exc):
        return Failure.NO_BUCKET  # any request, whichever class obstore chose
    if isinstance(exc, FileNotFoundError):  # obstore's 404 (the builtin, not a BaseError)
        return Failure.NOT_FOUND
    if isinstance(exc, PreconditionError | AlreadyExistsError):
        return Failure.PRECONDITION
    if isinstance(exc, NotModifiedError):
        return Failure.NOT_MODIFIED
    if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
        return Failure.DENIED
    if isinstance(exc, GenericError):
        text = str(exc)
        status = _STATUS.search(text)
        if status is not None:
            return _BY_STATUS.get(int(status.group(1)), Failure.FINAL)
        if _CONNECT in text:
            return Failure.NOT_SENT
        if "builder error" in text or "non-partial response" in text:
            return Failure.FINAL  # a configuration error; a server ignoring Range
        return Failure.NETWORK  # timeouts, resets, bodies cut short
    return Failure.FINAL


# (error class, message) by failure: the table. Messages carry the S3 error code.
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
_TABLE: dict[Failure, tuple[type[ObjectStoreError], str]] = {
    Failure.NO_BUCKET: (
        BucketNotFoundError,
        "Bucket '{bucket}' does not exist at {endpoint}. Create it (e.g. `aws s3 mb "
        "s3://{bucket}`) or set OBJECTSTORE_BUCKET to an existing bucket.",
    ),
    Failure.PRECONDITION: (
        PreconditionFailedError,
        "{operation} of '{key}': the object is not as expected",
    ),
    Failure.DENIED: _DENIED,
    Failure.NOT_SENT: (
        StorageUnavailableError,
        "Cannot reach the S3 endpoint {endpoint} for {operation} of '{key}' after "
        "{attempts} attempt(s) ({code}). Check that the server is running and "
        "OBJECTSTORE_ENDPOINT_URL points at it.",
    ),
    Failure.NETWORK: (
        StorageUnavailableError,
        "The connection to {endpoint} failed during {operation} of '{key}' after "
        "{attempts} attempt(s) ({code}); check the network and the server, or raise "
        "OBJECTSTORE_READ_TIMEOUT_SECONDS / OBJECTSTORE_MAX_ATTEMPTS.",
    ),
    Failure.THROTTLED: _UNAVAILABLE,
    Failure.SERVER: _UNAVAILABLE,
    Failure.FINAL: (ObjectStoreError, "S3 {operation} of '{key}' failed: {code}: {message}"),
}


def translate(
    where: _Endpoint, exc: BaseException, operation: str, key: str, attempts: int
) -> BaseException:
    """Our error for `exc` (a programming error is returned unchanged, to be re-raised)."""
    if isinstance(exc, ObjectStoreError):
        return exc
    if not isinstance(exc, BaseError | FileNotFoundError):
        return exc
    failure = classify(exc)
    if failure is Failure.NOT_FOUND:
        return KeyNotFoundError(key)
    error_class, template = _TABLE.get(failure, _TABLE[Failure.FINAL])
    return error_class(
        template.format(
            operation=operation,
            key=key,
            code=_code(exc, failure),
            message=_summary(exc),
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


def no_credentials(endpoint: str) -> StoragePermissionError:
    """boto3's credential chain found nothing (obstore would sign with nothing)."""
    return StoragePermissionError(
        f"No usable S3 credentials for {endpoint}: set OBJECTSTORE_ACCESS_KEY_ID and "
        "OBJECTSTORE_SECRET_ACCESS_KEY, or configure an AWS profile or role."
    )


def _code(exc: BaseException, failure: Failure) -> str:
    """The S3 error code of the answer, else what happened on the wire."""
    text = str(exc)
    found = _CODE.search(text)
    if found is not None:
        return found.group(1)
    status = _STATUS.search(text)
    if status is not None:
        return status.group(1)
    if failure is Failure.NOT_SENT:
        return "connection refused" if "ConnectionRefused" in text else "connect failed"
    if failure is Failure.NETWORK:
        return "timed out" if "Timeout" in text or "TimedOut" in text else "connection lost"
    return type(exc).__name__


def _summary(exc: BaseException) -> str:
    """obstore's first line (its message continues with a long debug dump)."""
    return str(exc).split("\n", 1)[0][:300]
