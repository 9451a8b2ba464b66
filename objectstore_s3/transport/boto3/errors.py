"""botocore's errors, classified for the retry loop and translated into ours: one table.

`classify` says what a failure means for a retry (a `Failure`: was the request even
sent? may it have been applied?); `translate` turns it into the `ObjectStoreError`
subclass a user catches, through the one table in failures.py. Both are used only by
client.py and backend.py, which chain the original error (`raise ... from exc`).
"""

from __future__ import annotations

import botocore.exceptions as bce

from objectstore_s3.errors import ObjectStoreError
from objectstore_s3.transport.failures import Endpoint, Failure, error_for, no_credentials

__all__ = ["classify", "not_implemented", "translate", "version_refused"]


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
    **dict.fromkeys(("NoSuchKey", "NotFound", "404", "NoSuchVersion"), Failure.NOT_FOUND),
    "NoSuchBucket": Failure.NO_BUCKET,
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
        Failure.DENIED,
    ),
}


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, _NOT_SENT):
        return Failure.NOT_SENT
    if isinstance(exc, bce.ClientError):
        return _BY_CODE.get(_code(exc) or "", Failure.FINAL)
    if isinstance(exc, _NETWORK):
        return Failure.NETWORK
    return Failure.FINAL


def translate(
    where: Endpoint, exc: BaseException, operation: str, key: str, attempts: int
) -> BaseException:
    """Our error for a botocore failure (anything else, ours or a programming error, is
    returned unchanged, to be re-raised)."""
    if isinstance(exc, ObjectStoreError):  # a ConnectionError too: not _NETWORK's
        return exc
    if isinstance(exc, _CREDENTIALS):
        return no_credentials(where.endpoint)
    if isinstance(exc, _NOT_SENT + _NETWORK):
        failure = Failure.NOT_SENT if isinstance(exc, _NOT_SENT) else Failure.NETWORK
        return error_for(failure, where, operation, key, attempts, code=type(exc).__name__)
    if not isinstance(exc, bce.ClientError):
        return exc
    return error_for(
        classify(exc),
        where,
        operation,
        key,
        attempts,
        code=_code(exc) or "Unknown",
        message=exc.response.get("Error", {}).get("Message", ""),
    )


def version_refused(exc: BaseException) -> bool:
    """A request naming a version refused because that version is a delete marker (405)
    or because its id is not one the server could have given (400 InvalidArgument)."""
    if not isinstance(exc, bce.ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = _code(exc)
    return (
        status == 405
        or code in ("MethodNotAllowed", "405", "InvalidArgument")
        or (
            not_implemented(exc)  # rclone: no versions at all
        )
    )


def not_implemented(exc: BaseException) -> bool:
    """The server has no such request (501; `rclone serve s3` for versioning)."""
    if not isinstance(exc, bce.ClientError):
        return False
    return _code(exc) in ("NotImplemented", "501")


def _code(exc: bce.ClientError) -> str | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if status in (304, 412):  # HEAD answers carry no error code, and servers differ
        return str(status)
    return str(exc.response.get("Error", {}).get("Code", "")) or (str(status) if status else None)
