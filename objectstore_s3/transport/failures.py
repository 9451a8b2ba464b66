"""What a failed request means, and the one table that turns it into our error.

Each transport only classifies its client's exceptions into a `Failure` (boto3/errors.py
for botocore, obstore/errors.py for obstore) and names the S3 error code it saw; the retry
loops ask the `Failure` whether to retry, and `error_for` gives the `ObjectStoreError`
a user catches, with a message that names the way out, the same on either transport.
Nothing here imports a client library.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from objectstore_s3.errors import (
    BucketNotFoundError,
    KeyNotFoundError,
    ObjectStoreError,
    OutcomeUnknownError,
    PreconditionFailedError,
    StoragePermissionError,
    StorageUnavailableError,
)

__all__ = [
    "Endpoint",
    "Failure",
    "Retries",
    "Step",
    "error_for",
    "no_credentials",
    "unknown_outcome",
    "version_not_found",
]


class Endpoint(Protocol):
    endpoint: str
    bucket: str


class Failure(enum.Enum):
    """What a failed request means for retrying it."""

    NOT_SENT = "not sent"  # connection refused / connect timeout: nothing reached the server
    NETWORK = "network"  # sent, then the connection failed or timed out: it may have applied
    THROTTLED = "throttled"  # 503 / 429 / SlowDown: refused before being applied
    SERVER = "server"  # 500 / 502 / 504: the server failed, perhaps after applying
    PRECONDITION = "precondition"  # 412, or 409 (a conditional write racing another)
    NOT_MODIFIED = "not modified"  # 304
    NOT_FOUND = "not found"
    NO_BUCKET = "no bucket"
    DENIED = "denied"  # 401 / 403, bad or expired credentials
    FINAL = "final"  # bad request, unsupported answer...: retrying cannot help

    @property
    def retryable(self) -> bool:
        return self in (Failure.NOT_SENT, Failure.NETWORK, Failure.THROTTLED, Failure.SERVER)

    @property
    def maybe_applied(self) -> bool:
        return self in (Failure.NETWORK, Failure.SERVER)


class Step(enum.Enum):
    """What a transport's retry loop does after a failed attempt."""

    RETRY = "retry"  # sleep `Retries.backoff(attempt)`, then try again
    VERIFY = "verify"  # an earlier attempt may have landed: look (a HEAD); else UNKNOWN
    UNKNOWN = "unknown"  # raise `unknown_outcome`: it may or may not have been applied
    PRECONDITION = "precondition"  # raise PreconditionFailedError
    FAIL = "fail"  # raise the translated error


@dataclass
class Retries:
    """The retry decisions of one call, the same on every transport. `written` marks a
    conditional write and holds the ETag its object would get: once an attempt may have
    landed (its answer was lost), a later 412 may be that attempt's own effect (VERIFY),
    and a final failure must not claim the write did not happen (UNKNOWN). `lost`
    counts those attempts: one the call did not end with may still be applied later."""

    attempts: int
    written: str | None = None
    maybe_applied: bool = False
    lost: int = 0

    def after(self, failure: Failure, attempt: int) -> Step:
        conditional = self.written is not None
        if failure is Failure.NOT_FOUND and conditional:
            # AWS and moto answer If-Match on a missing key with 404: the precondition
            # failed, which is how every backend reports it.
            failure = Failure.PRECONDITION
        if failure is Failure.PRECONDITION:
            return Step.VERIFY if self.maybe_applied and conditional else Step.PRECONDITION
        if conditional and failure.maybe_applied:
            self.maybe_applied = True
            self.lost += 1
        if failure.retryable and attempt < self.attempts:
            return Step.RETRY
        return Step.UNKNOWN if self.maybe_applied else Step.FAIL

    def repeats(self, verified: bool) -> int:
        """After the call succeeded (or `verified` that one lost attempt landed): how many
        other attempts, sent and unanswered, may still be applied (a slow server)."""
        return max(0, self.lost - int(verified))

    def error(
        self,
        step: Step,
        exc: BaseException,
        where: Endpoint,
        operation: str,
        key: str,
        attempt: int,
        translate: Callable[[Endpoint, BaseException, str, str, int], BaseException],
    ) -> BaseException:
        """The error that ends the call after `step` (a VERIFY that saw nothing land is an
        unknown outcome); `translate` is the transport's own, for FAIL, and never sees
        one of our errors (raised inside a request, e.g. by a look it made): that stays."""
        if step in (Step.VERIFY, Step.UNKNOWN):
            assert self.written is not None
            return unknown_outcome(where, operation, key, attempt, self.written, self.lost)
        if step is Step.PRECONDITION:
            return PreconditionFailedError(f"{operation} of '{key}': the object is not as expected")
        if isinstance(exc, ObjectStoreError):
            return exc
        return translate(where, exc, operation, key, attempt)

    @staticmethod
    def backoff(attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt`: at most 2 s, jittered."""
        return min(2.0, 0.1 * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)  # noqa: S311


_UNAVAILABLE = (
    StorageUnavailableError,
    "The S3 server at {endpoint} failed {operation} of '{key}' ({code}) after "
    "{attempts} attempt(s); try again later or check the server's health.",
)
# (error class, message) by failure: the table.
_TABLE: dict[Failure, tuple[type[ObjectStoreError], str]] = {
    Failure.NO_BUCKET: (
        BucketNotFoundError,
        "Bucket '{bucket}' does not exist at {endpoint}. Create it with `objectstore-s3 "
        "bucket create {bucket}`, or set OBJECTSTORE_BUCKET to an existing bucket.",
    ),
    Failure.PRECONDITION: (
        PreconditionFailedError,
        "{operation} of '{key}': the object is not as expected",
    ),
    Failure.DENIED: (
        StoragePermissionError,
        "The S3 server denied {operation} of '{key}' ({code}). Check that the credentials "
        "are valid and that their policy allows it (examples in infra/).",
    ),
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


def error_for(
    failure: Failure,
    where: Endpoint,
    operation: str,
    key: str,
    attempts: int,
    *,
    code: str,
    message: str = "",
) -> ObjectStoreError:
    """Our error for a request that failed this way (after `attempts` attempts)."""
    if failure is Failure.NOT_FOUND:
        return KeyNotFoundError(key)
    error_class, template = _TABLE.get(failure, _TABLE[Failure.FINAL])
    return error_class(
        template.format(
            operation=operation,
            key=key,
            code=code,
            message=message,
            bucket=where.bucket,
            endpoint=where.endpoint,
            attempts=attempts,
        )
    )


def unknown_outcome(
    where: Endpoint, operation: str, key: str, attempts: int, expected: str, lost: int = 1
) -> OutcomeUnknownError:
    """A conditional write that may or may not have landed (its answers were lost)."""
    return OutcomeUnknownError(
        f"The S3 server at {where.endpoint} did not answer {operation} of '{key}' after "
        f"{attempts} attempt(s); it may or may not have been applied. Try again later.",
        expected_etag=expected,
        lost=max(lost, 1),
    )


def version_not_found(key: str, version_id: str | None) -> KeyNotFoundError:
    """A read of a key (or of one version of it) that is not there."""
    if version_id is None:
        return KeyNotFoundError(key)
    return KeyNotFoundError(
        key,
        f"Version '{version_id}' of the object with key '{key}' could not be found (removed, "
        "or it is a deletion). List the key's versions to see which remain.",
    )


def no_credentials(endpoint: str) -> StoragePermissionError:
    """The credential chain found nothing to sign with."""
    return StoragePermissionError(
        f"No usable S3 credentials for {endpoint}: set OBJECTSTORE_ACCESS_KEY_ID and "
        "OBJECTSTORE_SECRET_ACCESS_KEY, or configure an AWS profile or role."
    )
