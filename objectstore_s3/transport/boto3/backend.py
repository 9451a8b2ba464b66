"""The boto3 transport: a `Backend` on any S3-compatible server (with client.py, its
connection and retries, and errors.py, its one error table, the only boto3 users).

Primitives map one-to-one onto S3 requests, preconditions included; large objects move
in parts (transfer.py), downloads through `get_range_into` here, uploads through the
multipart requests of multipart.py, copies above 5 GiB through its UploadPartCopy.
Versions: versions.py. What both transports do alike is remote.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from objectstore_s3.errors import KeyNotFoundError
from objectstore_s3.transport.base import (
    ObjectData,
    ObjectInfo,
    StaleUpload,
    content_etag,
)
from objectstore_s3.transport.failures import Failure, Retries, version_not_found
from objectstore_s3.transport.remote import RemoteBackend
from objectstore_s3.transport.transfer import PIECE, write_at

from .client import APPLIED, S3Connection
from .errors import classify, version_refused
from .multipart import COPY_LIMIT, S3Multipart, conditions, written
from .versions import S3Versions, quoted

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


__all__ = ["S3Backend"]


class S3Backend(RemoteBackend[S3Connection], S3Versions):
    """A `Backend` on one bucket of an S3 server, scoped to a key prefix."""

    _connection_class = S3Connection

    @property
    def client(self) -> S3Client:
        return self._c.client

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

    def _info(self, key: str, response: Any, size: int | None = None) -> ObjectInfo:
        modified = response.get("LastModified")
        return ObjectInfo(
            key,
            size if size is not None else int(response.get("ContentLength", 0)),
            str(response["ETag"]),
            modified.timestamp() if modified is not None else None,
            version_id=response.get("VersionId"),
        )

    def multipart(self) -> S3Multipart:
        return S3Multipart(self)

    # -- objects -------------------------------------------------------------------------

    def head(self, key: str, *, version_id: str | None = None) -> ObjectInfo | None:
        bucket_key = self.prefix + key
        extra = _version(version_id)

        def request() -> Any:
            try:
                return self.client.head_object(Bucket=self._c.bucket, Key=bucket_key, **extra)
            except Exception as exc:
                raise _gone(exc, key, version_id) from exc

        try:
            response = self._c.call("stat", key, request)
        except KeyNotFoundError:
            return None
        return self._info(key, response)

    def get(
        self, key: str, *, if_none_match: str | None = None, version_id: str | None = None
    ) -> ObjectData | None:
        bucket_key = self.prefix + key
        extra = _version(version_id)
        if if_none_match:
            extra["IfNoneMatch"] = if_none_match

        def request() -> tuple[Any, bytes] | None:
            try:
                response = self.client.get_object(Bucket=self._c.bucket, Key=bucket_key, **extra)
            except Exception as exc:
                if if_none_match and classify(exc) is Failure.NOT_MODIFIED:
                    return None
                raise _gone(exc, key, version_id) from exc
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
        """See Backend.put."""
        bucket_key = self.prefix + key
        extra = conditions(if_match, if_none_match)
        expected = (etag or content_etag(data)) if extra else None
        response, retries = self._write(
            "write",
            key,
            lambda: self.client.put_object(
                Bucket=self._c.bucket, Key=bucket_key, Body=data, **extra
            ),
            expected,
        )
        info = written(self, key, response, len(data), expected)
        return replace(info, repeats=retries.repeats(response is APPLIED))

    def _write(
        self, operation: str, key: str, request: Callable[[], Any], expected: str | None
    ) -> tuple[Any, Retries]:
        """A write's request (conditional if `expected`, the ETag it would make: a lost
        answer then a 412 is looked at) and the retries, for what they left behind."""
        retries = Retries(self._c.attempts, expected)
        response = self._c.call(
            operation,
            key,
            request,
            written=expected,
            verify=lambda: self.landed(key, expected),
            retries=retries,
        )
        return response, retries

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
        cut = len(self.prefix)

        def request(marker: dict[str, Any]) -> Any:
            return self.client.list_objects_v2(Bucket=self._c.bucket, Prefix=full, **marker)

        def next_page(page: Any) -> dict[str, Any] | None:
            token = page.get("NextContinuationToken")
            return {"ContinuationToken": token} if page.get("IsTruncated") and token else None

        for page in self._c.pages("list", prefix or "/", request, next_page):
            for item in page.get("Contents", []):
                modified = item.get("LastModified")
                yield ObjectInfo(
                    item["Key"][cut:],
                    int(item["Size"]),
                    quoted(str(item["ETag"])),
                    modified.timestamp() if modified is not None else None,
                )

    def copy(
        self,
        source: str,
        key: str,
        *,
        version_id: str | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> ObjectInfo:
        """See Backend.copy: one CopyObject up to 5 GiB, else UploadPartCopy in parts.
        A HEAD of the source first: its size chooses, and its ETag is what a copy whose
        answer was lost is recognized by (a conditional copy is never blindly re-sent)."""
        found = self.head(source, version_id=version_id)
        if found is None:
            raise version_not_found(source, version_id)
        origin: Any = {"Bucket": self._c.bucket, "Key": self.prefix + source}
        origin.update(_version(version_id))
        extra = conditions(if_match, if_none_match)
        if found.size > COPY_LIMIT:
            return self.multipart().copy_in_parts(
                key, origin, found, if_match=if_match, if_none_match=if_none_match
            )
        expected = found.etag if extra else None
        bucket_key = self.prefix + key
        response, retries = self._write(
            "copy",
            key,
            lambda: self.client.copy_object(
                Bucket=self._c.bucket, Key=bucket_key, CopySource=origin, **extra
            ),
            expected,
        )
        if response is APPLIED:
            return replace(self.applied(key, expected), repeats=retries.repeats(True))
        result = response["CopyObjectResult"]
        modified = result.get("LastModified")
        return ObjectInfo(
            key,
            found.size,
            quoted(str(result["ETag"])),  # SeaweedFS leaves the quotes out
            modified.timestamp() if modified is not None else None,
            retries.repeats(False),
            response.get("VersionId"),
        )

    # -- URLs ----------------------------------------------------------------------------

    def presign(self, key: str, expires: float) -> str:
        """See Backend.presign: signed here, no request (SigV4 allows up to 7 days)."""
        params = {"Bucket": self._c.bucket, "Key": self.prefix + key}
        return self._c.call(
            "presign",
            key,
            lambda: self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=max(1, round(expires))
            ),
        )

    # -- downloads in parts (transfer.RangeClient) ----------------------------------------

    def get_range_into(
        self, key: str, start: int, end: int, if_match: str, fd: int, version_id: str | None = None
    ) -> int:
        bucket_key = self.prefix + key
        extra = _version(version_id)

        def request() -> int:
            response = self.client.get_object(
                Bucket=self._c.bucket,
                Key=bucket_key,
                Range=f"bytes={start}-{end - 1}",
                IfMatch=if_match,
                **extra,
            )
            at = start
            for piece in response["Body"].iter_chunks(PIECE):
                at = write_at(fd, piece, at)
            return at

        return self._c.call("download", key, request)

    # -- clock, stale uploads, bucket ------------------------------------------------------

    def server_time(self) -> tuple[float, float] | None:
        return self._c.clock.now()

    def stale_uploads(self, older_than: float) -> Iterable[StaleUpload]:
        return self.multipart().stale(older_than)

    def abort_upload(self, upload: StaleUpload) -> None:
        self.multipart().abort_upload_id(upload.key, upload.upload_id)

    def create_bucket(self, *, versioned: bool = False) -> None:
        self._c.create_bucket()
        if versioned and self.versioning() == "off":
            self.set_versioning(True)


def _version(version_id: str | None) -> dict[str, Any]:
    return {"VersionId": version_id} if version_id else {}


def _gone(exc: Exception, key: str, version_id: str | None) -> Exception:
    """A request for a version: a version that is not there (or a delete marker, 405; an
    id the server cannot parse, 400) is a missing version; anything else stays."""
    if version_id is None:
        return exc
    failure = classify(exc)
    if failure is Failure.NOT_FOUND or version_refused(exc):
        return version_not_found(key, version_id)
    return exc
