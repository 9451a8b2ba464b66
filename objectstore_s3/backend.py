"""The S3 backend: the only module that talks to boto3.

It offers a handful of primitives on raw bucket keys (get, head, put, delete, list,
download/upload a file) and turns every botocore error into one of ours in one place,
`_translate`, chained with `raise ... from`. Conditional requests (If-Match,
If-None-Match) are exposed because the cache revalidates with them and the quota ledger
is updated with them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import boto3
import botocore.exceptions as bce
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from .errors import (
    BucketNotFoundError,
    KeyNotFoundError,
    ObjectStoreError,
    StoragePermissionError,
    StorageUnavailableError,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from .server import Endpoint
    from .settings import ObjectStoreSettings

__all__ = ["ObjectData", "ObjectInfo", "PreconditionFailedError", "S3Backend"]

log = logging.getLogger("objectstore_s3")


class PreconditionFailedError(ObjectStoreError):
    """A conditional write lost a race (HTTP 412): someone else changed the object."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: datetime | None = None


@dataclass(frozen=True)
class ObjectData:
    body: bytes
    etag: str
    last_modified: datetime | None = None


# botocore error code -> (our exception, message). The one translation table.
_NOT_FOUND = (KeyNotFoundError, "")
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
_ERROR_TABLE: dict[str, tuple[type[ObjectStoreError], str]] = {
    "NoSuchKey": _NOT_FOUND,
    "NotFound": _NOT_FOUND,
    "404": _NOT_FOUND,
    "NoSuchBucket": (
        BucketNotFoundError,
        "Bucket '{bucket}' does not exist at {endpoint}. Create it (e.g. `aws s3 mb "
        "s3://{bucket}`) or set OBJECTSTORE_BUCKET to an existing bucket.",
    ),
    "PreconditionFailed": (PreconditionFailedError, "{operation} of '{key}': {message}"),
    "412": (PreconditionFailedError, "{operation} of '{key}': precondition failed"),
    "ConditionalRequestConflict": (
        PreconditionFailedError,
        "{operation} of '{key}': concurrent conditional write",
    ),
    "AccessDenied": _DENIED,
    "403": _DENIED,
    "Forbidden": _DENIED,
    "InvalidAccessKeyId": _DENIED,
    "SignatureDoesNotMatch": _DENIED,
    "InvalidToken": _DENIED,
    "ExpiredToken": _DENIED,
    "AllAccessDisabled": _DENIED,
    "SlowDown": _UNAVAILABLE,
    "ServiceUnavailable": _UNAVAILABLE,
    "InternalError": _UNAVAILABLE,
    "RequestTimeout": _UNAVAILABLE,
    "500": _UNAVAILABLE,
    "502": _UNAVAILABLE,
    "503": _UNAVAILABLE,
    "504": _UNAVAILABLE,
}

_NETWORK_ERRORS = (
    bce.EndpointConnectionError,
    bce.ConnectTimeoutError,
    bce.ReadTimeoutError,
    bce.ConnectionClosedError,
    bce.HTTPClientError,
)
_CREDENTIAL_ERRORS = (bce.NoCredentialsError, bce.PartialCredentialsError)


class S3Backend:
    """Primitives over one bucket; every method raises only our errors."""

    def __init__(self, settings: ObjectStoreSettings, endpoint: Endpoint) -> None:
        endpoint_url = endpoint.url
        self.bucket = settings.bucket
        self.endpoint = endpoint_url or "AWS S3"
        self._attempts = settings.max_attempts
        config = Config(
            region_name=settings.region,
            retries={"max_attempts": settings.max_attempts, "mode": "standard"},
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            max_pool_connections=max(10, settings.max_concurrency * 2),
            # S3-compatible servers (SeaweedFS, MinIO) want path-style addressing.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            signature_version="s3v4",
            # Default CRC trailers are not understood by every S3-compatible server.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        key_id: str | None
        secret: str | None
        if endpoint.access_key_id is not None:
            key_id, secret = endpoint.access_key_id, endpoint.secret_access_key
        else:
            key_id = settings.access_key_id
            secret = (
                settings.secret_access_key.get_secret_value()
                if settings.secret_access_key
                else None
            )
        self.client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=config,
        )
        self.transfer_config = TransferConfig(
            multipart_threshold=settings.multipart_threshold_bytes,
            multipart_chunksize=settings.multipart_chunksize_bytes,
            max_concurrency=settings.max_concurrency,
            use_threads=True,
        )

    def __repr__(self) -> str:
        return f"S3Backend(endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    # -- objects -------------------------------------------------------------------------

    def get(self, key: str, if_none_match: str | None = None) -> ObjectData | None:
        """The object's bytes; None when `if_none_match` matched (HTTP 304)."""
        extra: dict[str, Any] = {"IfNoneMatch": if_none_match} if if_none_match else {}
        try:
            with self._translated("read", key):
                response = self.client.get_object(Bucket=self.bucket, Key=key, **extra)
                body = response["Body"].read()
        except ObjectStoreError as exc:
            if if_none_match and _status(exc.__cause__) == 304:
                return None
            raise
        return ObjectData(body, response["ETag"], response.get("LastModified"))

    def head(self, key: str) -> ObjectInfo | None:
        """Size and ETag of an object, or None if it does not exist."""
        try:
            with self._translated("stat", key):
                response = self.client.head_object(Bucket=self.bucket, Key=key)
        except KeyNotFoundError:
            return None
        return ObjectInfo(
            key, response["ContentLength"], response["ETag"], response.get("LastModified")
        )

    def put(
        self,
        key: str,
        body: bytes | BinaryIO,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> str:
        """Store an object, optionally only if it is unchanged / absent; returns its ETag."""
        extra: dict[str, Any] = {}
        if if_match:
            extra["IfMatch"] = if_match
        if if_none_match:
            extra["IfNoneMatch"] = if_none_match
        with self._translated("write", key):
            response = self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
        return response["ETag"]

    def delete(self, key: str) -> None:
        with self._translated("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under `prefix`, paginated, in the bucket's (lexicographic) order."""
        paginator = self.client.get_paginator("list_objects_v2")
        with self._translated("list", prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        item["Key"], item["Size"], item["ETag"], item.get("LastModified")
                    )

    def download_file(
        self, key: str, path: Path, progress: Callable[[int], None] | None = None
    ) -> None:
        """Stream an object to `path` with multipart ranged GETs (bounded memory)."""
        with self._translated("download", key):
            self.client.download_file(
                self.bucket, key, str(path), Config=self.transfer_config, Callback=progress
            )

    def upload_file(
        self, path: Path, key: str, progress: Callable[[int], None] | None = None
    ) -> None:
        """Stream a local file to `key`, multipart above the threshold (bounded memory)."""
        with self._translated("upload", key):
            self.client.upload_file(
                str(path), self.bucket, key, Config=self.transfer_config, Callback=progress
            )

    # -- bucket --------------------------------------------------------------------------

    def create_bucket(self) -> None:
        """Create the bucket if it does not exist (tests, the embedded server, the CLI)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        region = self.client.meta.region_name
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            with self._translated("create bucket", self.bucket):
                self.client.create_bucket(**kwargs)
        except ObjectStoreError as exc:
            if _code(exc.__cause__) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def on_request(self, callback: Callable[[str, str | None], None]) -> None:
        """Call `callback(operation_name, bucket_key)` before each S3 API call (counting)."""

        def _hook(**kwargs: Any) -> None:
            operation = kwargs.get("event_name", "").rsplit(".", 1)[-1]
            callback(operation, kwargs.get("params", {}).get("Key"))

        self.client.meta.events.register("before-parameter-build.s3.*", _hook)

    # -- errors --------------------------------------------------------------------------

    @contextmanager
    def _translated(self, operation: str, key: str) -> Iterator[None]:
        try:
            yield
        except ObjectStoreError:
            raise
        except Exception as exc:
            mapped = self._translate(exc, operation, key)
            if mapped is None:
                raise
            raise mapped from exc

    def _translate(self, exc: BaseException, operation: str, key: str) -> ObjectStoreError | None:
        if isinstance(exc, S3UploadFailedError):
            # boto3 flattens the ClientError into text; its context still holds it.
            cause = exc.__cause__ or exc.__context__
            if cause is not None:
                exc = cause
        if isinstance(exc, _CREDENTIAL_ERRORS):
            return StoragePermissionError(
                f"No usable S3 credentials for {self.endpoint}: set OBJECTSTORE_ACCESS_KEY_ID "
                "and OBJECTSTORE_SECRET_ACCESS_KEY, or configure an AWS profile or role."
            )
        if isinstance(exc, _NETWORK_ERRORS):
            return StorageUnavailableError(
                f"Cannot reach the S3 endpoint {self.endpoint} for {operation} of '{key}' "
                f"after {self._attempts} attempt(s) ({type(exc).__name__}). Check that the "
                "server is running and OBJECTSTORE_ENDPOINT_URL points at it."
            )
        if not isinstance(exc, bce.ClientError):
            return None
        code = _code(exc) or "Unknown"
        error_class, template = _ERROR_TABLE.get(
            code, (ObjectStoreError, "S3 {operation} of '{key}' failed: {code}: {message}")
        )
        if error_class is KeyNotFoundError:
            return KeyNotFoundError(key)
        message = exc.response.get("Error", {}).get("Message", "")
        return error_class(
            template.format(
                operation=operation,
                key=key,
                code=code,
                message=message,
                bucket=self.bucket,
                endpoint=self.endpoint,
                attempts=self._attempts,
            )
        )


def _code(exc: BaseException | None) -> str | None:
    if isinstance(exc, bce.ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) or None
    return None


def _status(exc: BaseException | None) -> int | None:
    if isinstance(exc, bce.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None
    return None
