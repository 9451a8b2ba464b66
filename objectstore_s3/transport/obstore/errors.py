"""obstore's errors, classified for the retry loop and translated into ours: one table.

obstore raises a handful of classes (`PreconditionError`, `PermissionDeniedError`, the
builtin `FileNotFoundError`, ...) and one catch-all, `GenericError`, for refused
connections, timeouts, cut bodies and 5xx alike; only its message tells them apart (the
Rust error's debug text: `ConnectError(...)` for a request that never left, `status: 503`
for a server answer). `classify` says what a failure means for a retry (a `Failure`),
`translate` turns it into the `ObjectStoreError` a user catches, through the one table
in failures.py that both transports share. Used only by
client.py and backend.py (obstore/), which chain the original (`raise ... from exc`).
"""

from __future__ import annotations

import re

from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    GenericError,
    NotModifiedError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)

from objectstore_s3.transport.failures import Endpoint, Failure, error_for

__all__ = ["classify", "translate"]


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


def translate(
    where: Endpoint, exc: BaseException, operation: str, key: str, attempts: int
) -> BaseException:
    """Our error for an obstore failure (one of its classes or the builtin 404); anything
    else, ours or a programming error, is returned unchanged, to be re-raised."""
    if not isinstance(exc, BaseError | FileNotFoundError):
        return exc
    failure = classify(exc)
    return error_for(
        failure, where, operation, key, attempts, code=_code(exc, failure), message=_summary(exc)
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
