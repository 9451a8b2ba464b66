"""The boto3 transport: a `Backend` on any S3-compatible server (with s3client.py, its
connection and retries, and s3errors.py, its one error table, the only boto3 users).

Primitives map one-to-one onto S3 requests, preconditions included; large objects move
in parts (transfer.py) with the part requests implemented here.
"""

from __future__ import annotations

import builtins
import contextlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import botocore.exceptions as bce

from objectstore_s3.errors import (
    KeyNotFoundError,
    ObjectStoreError,
    OutcomeUnknownError,
    PreconditionFailedError,
)
from objectstore_s3.fs import write_private
from objectstore_s3.transport.base import (
    ObjectData,
    ObjectInfo,
    Progress,
    StaleUpload,
    content_etag,
)
from objectstore_s3.transport.failures import Failure, Retries
from objectstore_s3.transport.transfer import (
    PIECE,
    FileWindow,
    download_parts,
    upload_parts,
    write_at,
)

from .client import APPLIED, S3Connection
from .errors import classify

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from objectstore_s3.settings import ObjectStoreSettings
    from objectstore_s3.transport.base import Endpoint

__all__ = ["S3Backend"]

T = TypeVar("T")


class S3Backend:
    """A `Backend` on one bucket of an S3 server, scoped to a key prefix."""

    def __init__(
        self,
        settings: ObjectStoreSettings,
        endpoint: Endpoint,
        *,
        prefix: str = "",
        connection: S3Connection | None = None,
    ) -> None:
        self._c = connection if connection is not None else S3Connection(settings, endpoint)
        self._settings = settings
        self._endpoint = endpoint
        self.prefix = prefix

    @property
    def client(self) -> S3Client:
        return self._c.client

    @property
    def name(self) -> str:
        return f"{self._c.endpoint} bucket '{self._c.bucket}'"

    def __repr__(self) -> str:
        return f"S3Backend(endpoint={self._c.endpoint!r}, bucket={self._c.bucket!r})"

    def scoped(self, prefix: str) -> S3Backend:
        return S3Backend(
            self._settings, self._endpoint, prefix=self.prefix + prefix, connection=self._c
        )

    def on_request(self, callback: Callable[[str, str | None], None]) -> None:
        """Call `callback(operation, key)` before each request (counting in tests); `key` is
        relative to this scope, None for requests outside it (the ledger) or without one."""
        prefix = self.prefix

        def hook(**kwargs: Any) -> None:
            operation = kwargs.get("event_name", "").rsplit(".", 1)[-1]
            key = kwargs.get("params", {}).get("Key")
            inside = key is not None and key.startswith(prefix)
            callback(operation, key[len(prefix) :] if inside else None)

        self.client.meta.events.register("before-parameter-build.s3.*", hook)

    def close(self) -> None:
        self._c.close()

    def _info(self, key: str, response: Any, size: int | None = None) -> ObjectInfo:
        modified = response.get("LastModified")
        return ObjectInfo(
            key,
            size if size is not None else int(response.get("ContentLength", 0)),
            str(response["ETag"]),
            modified.timestamp() if modified is not None else None,
        )

    # -- objects -------------------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo | None:
        bucket_key = self.prefix + key
        try:
            response = self._c.call(
                "stat",
                key,
                lambda: self.client.head_object(Bucket=self._c.bucket, Key=bucket_key),
            )
        except KeyNotFoundError:
            return None
        return self._info(key, response)

    def get(self, key: str, *, if_none_match: str | None = None) -> ObjectData | None:
        bucket_key = self.prefix + key
        extra: dict[str, Any] = {"IfNoneMatch": if_none_match} if if_none_match else {}

        def request() -> tuple[Any, bytes] | None:
            try:
                response = self.client.get_object(Bucket=self._c.bucket, Key=bucket_key, **extra)
            except Exception as exc:
                if if_none_match and classify(exc) is Failure.NOT_MODIFIED:
                    return None
                raise
            return response, response["Body"].read()  # inside the attempt: a cut is retried

        result = self._c.call("read", key, request)
        if result is None:
            return None
        response, body = result
        return ObjectData(body, self._info(key, response, len(body)))

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        etag: str | None = None,
    ) -> ObjectInfo:
        bucket_key = self.prefix + key
        extra = _conditions(if_match, if_none_match)
        expected = (etag or content_etag(data)) if extra else None
        retries = Retries(self._c.attempts, expected)
        response = self._c.call(
            "write",
            key,
            lambda: self.client.put_object(
                Bucket=self._c.bucket, Key=bucket_key, Body=data, **extra
            ),
            written=expected,
            verify=lambda: self._landed(key, expected),
            retries=retries,
        )
        info = self._written(key, response, len(data), expected)
        return replace(info, repeats=retries.repeats(response is APPLIED))

    def _landed(self, key: str, expected: str | None) -> bool:
        info = self.head(key)
        return info is not None and info.etag == expected

    def _written(self, key: str, response: Any, size: int, expected: str | None) -> ObjectInfo:
        if response is APPLIED:
            info = self.head(key)
            if info is None or info.etag != expected:  # pragma: no cover - raced away
                raise OutcomeUnknownError(f"The write of '{key}' may not have landed")
            return info
        when = self._c.clock.now()
        return ObjectInfo(key, size, str(response["ETag"]), when[0] if when else None)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        bucket_key = self.prefix + key
        extra: dict[str, Any] = {"IfMatch": if_match} if if_match else {}
        self._c.call(
            "delete",
            key,
            lambda: self.client.delete_object(Bucket=self._c.bucket, Key=bucket_key, **extra),
            written="" if if_match else None,
            verify=lambda: False,
        )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        full = self.prefix + prefix
        token: str | None = None
        while True:
            extra: dict[str, Any] = {"ContinuationToken": token} if token else {}
            page = self._c.call(
                "list",
                prefix or "/",
                lambda extra=extra: self.client.list_objects_v2(  # type: ignore[misc]
                    Bucket=self._c.bucket, Prefix=full, **extra
                ),
            )
            for item in page.get("Contents", []):
                modified = item.get("LastModified")
                yield ObjectInfo(
                    item["Key"][len(self.prefix) :],
                    int(item["Size"]),
                    _quoted(str(item["ETag"])),
                    modified.timestamp() if modified is not None else None,
                )
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    # -- transfers -----------------------------------------------------------------------

    def download(self, key: str, path: Path, progress: Progress | None = None) -> ObjectInfo:
        info = self.head(key)
        if info is None:
            raise KeyNotFoundError(key)
        if info.size <= self._c.chunk:
            data = self.get(key)
            assert data is not None
            write_private(path, data.body)
            if progress is not None:
                progress(len(data.body))
            return data.info
        download_parts(self, info, path, chunk=self._c.chunk, pool=self._c.pool, progress=progress)
        return info

    def upload(
        self,
        key: str,
        path: Path,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        unchanged: Callable[[], bool] | None = None,
        progress: Progress | None = None,
    ) -> ObjectInfo:
        size = path.stat().st_size
        if size <= self._c.threshold:
            data = path.read_bytes()
            if unchanged is not None and not unchanged():
                raise PreconditionFailedError(f"{path} changed while it was uploaded")
            info = self.put(key, data, if_match=if_match, if_none_match=if_none_match)
            if progress is not None:
                progress(size)
            return info
        return upload_parts(
            self,
            key,
            path,
            chunk=self._c.chunk,
            pool=self._c.pool,
            if_match=if_match,
            if_none_match=if_none_match,
            unchanged=unchanged,
            progress=progress,
        )

    # PartClient, for transfer.py

    def get_range_into(self, key: str, start: int, end: int, if_match: str, fd: int) -> int:
        bucket_key = self.prefix + key

        def request() -> int:
            response = self.client.get_object(
                Bucket=self._c.bucket,
                Key=bucket_key,
                Range=f"bytes={start}-{end - 1}",
                IfMatch=if_match,
            )
            at = start
            for piece in response["Body"].iter_chunks(PIECE):
                at = write_at(fd, piece, at)
            return at

        return self._c.call("download", key, request)

    def create_upload(self, key: str) -> str:
        bucket_key = self.prefix + key
        response = self._c.call(
            "upload",
            key,
            lambda: self.client.create_multipart_upload(Bucket=self._c.bucket, Key=bucket_key),
        )
        return str(response["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, body: FileWindow) -> str:
        bucket_key = self.prefix + key

        def request() -> Any:
            body.seek(0)
            return self.client.upload_part(
                Bucket=self._c.bucket,
                Key=bucket_key,
                UploadId=upload_id,
                PartNumber=number,
                # Buffered: the HTTP client reads 8 KiB at a time, one pread each otherwise.
                Body=io.BufferedReader(body, PIECE),
                ContentLength=len(body),
            )

        response = self._c.call("upload", key, request)
        return str(response["ETag"])

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: builtins.list[tuple[int, str]],
        *,
        if_match: str | None,
        if_none_match: str | None,
        expected_etag: str,
        size: int,
    ) -> ObjectInfo:
        bucket_key = self.prefix + key
        extra = _conditions(if_match, if_none_match)
        response = self._c.call(
            "upload",
            key,
            lambda: self.client.complete_multipart_upload(
                Bucket=self._c.bucket,
                Key=bucket_key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": number, "ETag": etag} for number, etag in parts]
                },
                **extra,
            ),
            written=expected_etag if extra else None,
            verify=lambda: self._landed(key, expected_etag),
        )
        return self._written(key, response, size, expected_etag)

    def abort_upload_id(self, key: str, upload_id: str) -> None:
        bucket_key = self.prefix + key
        # Best effort: a reconcile aborts what is left (stale_uploads).
        with contextlib.suppress(ObjectStoreError):
            self._c.call(
                "abort upload",
                key,
                lambda: self.client.abort_multipart_upload(
                    Bucket=self._c.bucket, Key=bucket_key, UploadId=upload_id
                ),
            )

    # -- clock, stale uploads, bucket ------------------------------------------------------

    def server_time(self) -> tuple[float, float] | None:
        return self._c.clock.now()

    def stale_uploads(self, older_than: float) -> Iterable[StaleUpload]:
        found: builtins.list[StaleUpload] = []
        markers: dict[str, Any] = {}
        while True:

            def request(markers: dict[str, Any] = markers) -> Any:
                try:
                    return self.client.list_multipart_uploads(
                        Bucket=self._c.bucket, Prefix=self.prefix, **markers
                    )
                except bce.ClientError as exc:
                    # rclone answers NoSuchUpload for a bucket that never had an upload.
                    if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
                        return {"Uploads": []}
                    raise

            page = self._c.call("list uploads", self.prefix or "/", request)
            for upload in page.get("Uploads", []):
                initiated = upload.get("Initiated")
                moment = initiated.timestamp() if initiated is not None else None
                if moment is None or moment < older_than:
                    found.append(
                        StaleUpload(upload["Key"][len(self.prefix) :], upload["UploadId"], moment)
                    )
            if not page.get("IsTruncated"):
                return found
            markers = {
                "KeyMarker": page.get("NextKeyMarker", ""),
                "UploadIdMarker": page.get("NextUploadIdMarker", ""),
            }

    def abort_upload(self, upload: StaleUpload) -> None:
        self.abort_upload_id(upload.key, upload.upload_id)

    def create_bucket(self) -> None:
        kwargs: dict[str, Any] = {"Bucket": self._c.bucket}
        region = self.client.meta.region_name
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}

        def request() -> None:
            try:
                self.client.create_bucket(**kwargs)
            except bce.ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

        self._c.call("create bucket", self._c.bucket, request)


def _conditions(if_match: str | None, if_none_match: str | None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if if_match:
        extra["IfMatch"] = if_match
    if if_none_match:
        extra["IfNoneMatch"] = if_none_match
    return extra


def _quoted(etag: str) -> str:
    """ETags as HEAD gives them: quoted (rclone's listings leave the quotes out)."""
    return etag if etag.startswith(('"', 'W/"')) else f'"{etag}"'
