"""The boto3 transport's requests about versions: the bucket's versioning (Get/Put
BucketVersioning), the listing of every version (ListObjectVersions), and the removal
of one version.

botocore parses a ListObjectVersions page into two lists, versions and delete markers,
losing the order S3 gave them in (a key's entries newest first, both kinds together):
each page is merged back, by key, the current entry first, then newest first. Listings
give Last-Modified to the second, so ties are broken by the entry's place in the raw
answer, which `raw_order.record_order` (an after-call hook) keeps: a delete marker and the version
it hid, made within one second, come out in the server's order (SeaweedFS, AWS). A
server whose answer lists every version before every marker (moto) cannot be helped.
A server without versions (`rclone serve s3` answers 501) lists its current objects as
version "null", as S3 does on a bucket that never had versioning.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import botocore.exceptions as bce

from objectstore_s3.errors import UnsupportedOperationError
from objectstore_s3.transport.base import ObjectInfo, VersionInfo

from .errors import not_implemented

if TYPE_CHECKING:
    from .client import S3Connection

__all__ = ["PAGE", "S3Versions", "quoted"]

_STATUS = {"Enabled": "enabled", "Suspended": "suspended"}
PAGE = 1000  # entries per ListObjectVersions page (S3's most)


class S3Versions:
    """The `Backend` methods about versions, mixed into `S3Backend` (over its connection
    `_c` and its scope `prefix`)."""

    _c: S3Connection
    prefix: str

    if TYPE_CHECKING:

        def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def versioning(self) -> str:
        """See Backend.versioning (a server without versions says nothing: "off")."""
        bucket = self._c.bucket
        response = self._c.call(
            "versioning status", bucket, lambda: self._c.client.get_bucket_versioning(Bucket=bucket)
        )
        return _STATUS.get(str(response.get("Status", "")), "off")

    def set_versioning(self, enabled: bool) -> None:
        connection = self._c
        wanted: Any = {"Status": "Enabled" if enabled else "Suspended"}

        def request() -> None:
            try:
                connection.client.put_bucket_versioning(
                    Bucket=connection.bucket, VersioningConfiguration=wanted
                )
            except bce.ClientError as exc:
                if not_implemented(exc):
                    raise UnsupportedOperationError(
                        f"The S3 server at {connection.endpoint} does not support versioning "
                        f"(bucket '{connection.bucket}'): versions and restores need one that "
                        "does (AWS S3, MinIO, SeaweedFS, Ceph RGW)."
                    ) from exc
                raise

        connection.call("versioning", connection.bucket, request)

    def list_versions(self, prefix: str = "") -> Iterator[VersionInfo]:
        """See Backend.list_versions (the module docstring on the order)."""
        connection = self._c
        full = self.prefix + prefix
        cut = len(self.prefix)

        def request(marker: dict[str, Any]) -> Any:
            try:
                return connection.client.list_object_versions(
                    Bucket=connection.bucket, Prefix=full, MaxKeys=PAGE, **marker
                )
            except bce.ClientError as exc:
                if not_implemented(exc):
                    return None  # no versions on this server: its objects are the "null" ones
                raise

        for page in connection.pages("list versions", prefix or "/", request, _next_page):
            if page is None:
                yield from _current(self.list(prefix))
                return
            yield from _merged(page, cut)

    def delete_version(self, key: str, version_id: str) -> None:
        """DeleteObject of one version: gone for good (204 if it was gone already)."""
        bucket_key = self.prefix + key
        self._c.call(
            "delete version",
            key,
            lambda: self._c.client.delete_object(
                Bucket=self._c.bucket, Key=bucket_key, VersionId=version_id
            ),
        )


def _next_page(page: Any) -> dict[str, Any] | None:
    if page is None or not page.get("IsTruncated"):
        return None
    return {
        "KeyMarker": page.get("NextKeyMarker", ""),
        "VersionIdMarker": page.get("NextVersionIdMarker", ""),
    }


def _merged(page: Any, cut: int) -> list[VersionInfo]:
    entries = [
        VersionInfo(
            item["Key"][cut:],
            str(item.get("VersionId") or "null"),
            int(item.get("Size", 0)),
            quoted(str(item["ETag"])),
            _seconds(item),
            bool(item.get("IsLatest")),
            deleted=False,
        )
        for item in page.get("Versions", [])
    ]
    entries += [
        VersionInfo(
            item["Key"][cut:],
            str(item.get("VersionId") or "null"),
            0,
            None,
            _seconds(item),
            bool(item.get("IsLatest")),
            deleted=True,
        )
        for item in page.get("DeleteMarkers", [])
    ]
    order = {
        (key[cut:], version): place for (key, version), place in page.get("EntryOrder", {}).items()
    }
    entries.sort(
        key=lambda entry: (
            entry.key,
            not entry.latest,
            -(entry.last_modified or 0.0),
            order.get((entry.key, entry.version_id), 0),
        )
    )
    return entries


def _current(objects: Iterator[ObjectInfo]) -> Iterator[VersionInfo]:
    for info in objects:
        yield VersionInfo(
            info.key, "null", info.size, info.etag, info.last_modified, True, deleted=False
        )


def _seconds(item: Any) -> float | None:
    modified = item.get("LastModified")
    return modified.timestamp() if modified is not None else None


def quoted(etag: str) -> str:
    """ETags as HEAD gives them: quoted (rclone's listings and SeaweedFS's copies leave
    the quotes out)."""
    return etag if etag.startswith(('"', 'W/"')) else f'"{etag}"'
