"""The multipart uploads of the boto3 transport (the obstore transport's too: obstore
cannot condition a completion, nor ask `unchanged()` before it): the part requests
transfer.py's `upload_parts` is written against (`PartClient`), server-side copies above
the single-copy limit (UploadPartCopy, the precondition on the completion), and the
listing of the uploads a killed process left behind, for a reconcile to abort. `written`
reads what a PUT or a completion made (the backend's put uses it too).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import botocore.exceptions as bce

from objectstore_s3.errors import ObjectStoreError
from objectstore_s3.transport.base import ObjectInfo, StaleUpload
from objectstore_s3.transport.remote import RemoteBackend
from objectstore_s3.transport.transfer import PIECE, FileWindow

from .client import APPLIED, S3Connection

__all__ = ["COPY_LIMIT", "S3Multipart", "conditions", "written"]

Scope = RemoteBackend[S3Connection]  # an `S3Backend`

COPY_LIMIT = 5 * 1024**3  # S3's largest CopyObject; larger sources are copied in parts
COPY_PART = 512 * 1024**2  # the part size of those copies (at most 10,000 parts)


class S3Multipart:
    """The multipart requests on one scope of an `S3Backend` (a `transfer.PartClient`)."""

    def __init__(self, backend: Scope) -> None:
        self._backend = backend
        self._c = backend.connection
        self._prefix = backend.prefix

    def create_upload(self, key: str) -> str:
        bucket_key = self._prefix + key
        response = self._c.call(
            "upload",
            key,
            lambda: self._c.client.create_multipart_upload(Bucket=self._c.bucket, Key=bucket_key),
        )
        return str(response["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, body: FileWindow) -> str:
        bucket_key = self._prefix + key

        def request() -> Any:
            body.seek(0)
            return self._c.client.upload_part(
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
        parts: list[tuple[int, str]],
        *,
        if_match: str | None,
        if_none_match: str | None,
        expected_etag: str,
        size: int,
    ) -> ObjectInfo:
        bucket_key = self._prefix + key
        extra = conditions(if_match, if_none_match)
        response = self._c.call(
            "upload",
            key,
            lambda: self._c.client.complete_multipart_upload(
                Bucket=self._c.bucket,
                Key=bucket_key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": number, "ETag": etag} for number, etag in parts]
                },
                **extra,
            ),
            written=expected_etag if extra else None,
            verify=lambda: self._backend.landed(key, expected_etag),
        )
        return written(self._backend, key, response, size, expected_etag)

    def copy_in_parts(
        self,
        key: str,
        origin: Any,
        found: ObjectInfo,
        *,
        if_match: str | None,
        if_none_match: str | None,
    ) -> ObjectInfo:
        """Copy the source `found` (`origin`: its CopySource) to `key` part by part on the
        server; the preconditions are checked by the completion, which alone publishes."""
        bucket_key = self._prefix + key
        part = max(COPY_PART, -(-found.size // 10_000))
        upload_id = self.create_upload(key)
        try:
            parts: list[tuple[int, str]] = []
            for number, start in enumerate(range(0, found.size, part), 1):
                window = f"bytes={start}-{min(start + part, found.size) - 1}"
                response = self._c.call(
                    "copy",
                    key,
                    lambda n=number, w=window: self._c.client.upload_part_copy(  # type: ignore[misc]
                        Bucket=self._c.bucket,
                        Key=bucket_key,
                        UploadId=upload_id,
                        PartNumber=n,
                        CopySource=origin,
                        CopySourceRange=w,
                    ),
                )
                parts.append((number, str(response["CopyPartResult"]["ETag"])))
            return self.complete_upload(
                key,
                upload_id,
                parts,
                if_match=if_match,
                if_none_match=if_none_match,
                expected_etag=found.etag,  # a lost answer: seen as unknown, never as landed
                size=found.size,
            )
        except BaseException:
            self.abort_upload_id(key, upload_id)
            raise

    def abort_upload_id(self, key: str, upload_id: str) -> None:
        bucket_key = self._prefix + key
        # Best effort: a reconcile aborts what is left (stale_uploads).
        with contextlib.suppress(ObjectStoreError):
            self._c.call(
                "abort upload",
                key,
                lambda: self._c.client.abort_multipart_upload(
                    Bucket=self._c.bucket, Key=bucket_key, UploadId=upload_id
                ),
            )

    def stale(self, older_than: float) -> list[StaleUpload]:
        """Incomplete uploads under the scope started before `older_than` (or unknown)."""

        def request(marker: dict[str, Any]) -> Any:
            try:
                return self._c.client.list_multipart_uploads(
                    Bucket=self._c.bucket, Prefix=self._prefix, **marker
                )
            except bce.ClientError as exc:
                # rclone answers NoSuchUpload for a bucket that never had an upload.
                if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
                    return {"Uploads": []}
                raise

        def next_page(page: Any) -> dict[str, Any] | None:
            if not page.get("IsTruncated"):
                return None
            return {
                "KeyMarker": page.get("NextKeyMarker", ""),
                "UploadIdMarker": page.get("NextUploadIdMarker", ""),
            }

        found: list[StaleUpload] = []
        cut = len(self._prefix)
        for page in self._c.pages("list uploads", self._prefix or "/", request, next_page):
            for upload in page.get("Uploads", []):
                initiated = upload.get("Initiated")
                moment = initiated.timestamp() if initiated is not None else None
                if moment is None or moment < older_than:
                    found.append(StaleUpload(upload["Key"][cut:], upload["UploadId"], moment))
        return found


def written(backend: Scope, key: str, response: Any, size: int, expected: str | None) -> ObjectInfo:
    """What a write (a PUT, a completion) made: from its answer, or from a look if an
    earlier attempt was seen to land (`APPLIED`)."""
    if response is APPLIED:
        return backend.applied(key, expected)
    when = backend.connection.clock.now()
    return ObjectInfo(
        key,
        size,
        str(response["ETag"]),
        when[0] if when else None,
        version_id=response.get("VersionId"),
    )


def conditions(if_match: str | None, if_none_match: str | None) -> dict[str, Any]:
    """A write's preconditions as boto3's request parameters."""
    extra: dict[str, Any] = {}
    if if_match:
        extra["IfMatch"] = if_match
    if if_none_match:
        extra["IfNoneMatch"] = if_none_match
    return extra
