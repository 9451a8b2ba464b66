"""An in-memory `Backend`: one dict as the bucket, for fast tests of the whole store.

It keeps S3's semantics where the store depends on them: MD5 ETags, conditional puts and
deletes (412), 304 on a matching If-None-Match, key-ordered listings, Last-Modified on
the server's clock, and versioning (off, enabled or suspended: each key's versions,
newest first, delete markers, the "null" version). Several `MemoryBackend`s on one
`MemoryBucket` are several nodes (or scopes) on one bucket. Tests can count requests
(`on_request`), inject faults (`inject`), and drive the server's clock (`clock`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from objectstore_s3.errors import (
    BucketNotFoundError,
    PreconditionFailedError,
    UnsupportedOperationError,
)

from .base import ObjectData, ObjectInfo, Progress, StaleUpload, VersionInfo, content_etag
from .failures import version_not_found
from .transfer import read_whole, save_whole

__all__ = ["MemoryBackend", "MemoryBucket"]

# A fault hook: called with (operation, bucket key, "before" | "after"); may raise.
Fault = Callable[[str, str, str], None]
_LISTINGS = ("ListObjectsV2", "ListObjectVersions")  # requests outside any key's scope
_NO_URLS = (
    "Presigned URLs need an S3 server: the in-memory backend has no URL to give. Use an S3 "
    "endpoint (OBJECTSTORE_ENDPOINT_URL, or `local` for the embedded server)."
)


@dataclass
class _Object:
    body: bytes
    etag: str
    last_modified: float
    version_id: str = "null"
    deleted: bool = False  # a delete marker


@dataclass
class MemoryBucket:
    """The shared state: each key's versions (newest first) and its current object, the
    bucket's versioning, the server's clock, test hooks."""

    clock: Callable[[], float] = time.time
    name: str = "memory"
    exists: bool = True
    objects: dict[str, _Object] = field(default_factory=dict)  # current, not deleted
    versions: dict[str, list[_Object]] = field(default_factory=dict)  # newest first
    versioning: str = "off"  # "enabled" | "suspended" | "off" (never enabled)
    uploads: dict[str, StaleUpload] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    hooks: list[Callable[[str, str | None], None]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def request(self, operation: str, key: str, stage: str = "before") -> None:
        """Count a request (stage 'before') and give injected faults their chance."""
        if stage == "before":
            for hook in list(self.hooks):
                hook(operation, key)
            if not self.exists:
                raise BucketNotFoundError(
                    f"Bucket '{self.name}' does not exist (in-memory backend). Create it, or "
                    "set OBJECTSTORE_BUCKET to an existing bucket."
                )
        for fault in list(self.faults):
            fault(operation, key, stage)

    # -- versions (call with `lock` held) --------------------------------------------------

    def write(self, full: str, item: _Object) -> _Object:
        """Make `item` the key's current version (or delete marker), as S3 does: a new
        version id when versioning is enabled, else it replaces the "null" version."""
        history = self.versions.setdefault(full, [])
        if self.versioning == "enabled":
            item.version_id = uuid.uuid4().hex
        else:
            history[:] = [old for old in history if old.version_id != "null"]
        history.insert(0, item)
        self._settle(full)
        return item

    def remove(self, full: str) -> None:
        """DELETE without a version: gone (unversioned), else a delete marker on top."""
        if self.versioning == "off":
            self.versions.pop(full, None)
            self._settle(full)
        else:  # even where nothing was: S3 leaves a marker
            self.write(full, _Object(b"", "", self.clock(), deleted=True))

    def find(self, full: str, version_id: str) -> _Object | None:
        for item in self.versions.get(full, ()):
            if item.version_id == version_id:
                return item
        return None

    def drop(self, full: str, version_id: str) -> None:
        """Remove one version for good; the next newest becomes current."""
        history = self.versions.get(full, [])
        history[:] = [item for item in history if item.version_id != version_id]
        self._settle(full)

    def _settle(self, full: str) -> None:
        history = self.versions.get(full)
        if not history:
            self.versions.pop(full, None)
            self.objects.pop(full, None)
        elif history[0].deleted:
            self.objects.pop(full, None)
        else:
            self.objects[full] = history[0]


class MemoryBackend:
    """A `Backend` over a `MemoryBucket`, scoped to a prefix."""

    def __init__(self, bucket: MemoryBucket | None = None, prefix: str = "") -> None:
        self.bucket = bucket if bucket is not None else MemoryBucket()
        self.prefix = prefix

    @property
    def name(self) -> str:
        return f"in-memory bucket '{self.bucket.name}'"

    def __repr__(self) -> str:
        return f"MemoryBackend(prefix={self.prefix!r})"

    def scoped(self, prefix: str) -> MemoryBackend:
        return MemoryBackend(self.bucket, self.prefix + prefix)

    def on_request(self, callback: Callable[[str, str | None], None]) -> None:
        """See S3Backend.on_request (a listing, too, counts as outside the scope)."""
        prefix = self.prefix

        def hook(operation: str, key: str | None) -> None:
            inside = key is not None and key.startswith(prefix) and operation not in _LISTINGS
            callback(operation, key[len(prefix) :] if inside and key else None)

        self.bucket.hooks.append(hook)

    def inject(self, fault: Fault) -> None:
        self.bucket.faults.append(fault)

    def close(self) -> None:
        """Nothing to release: the bucket is a dict, shared with the other scopes."""

    # -- objects -------------------------------------------------------------------------

    def _info(self, key: str, item: _Object) -> ObjectInfo:
        # S3 names a version only once the bucket has had versioning on.
        version = None if self.bucket.versioning == "off" else item.version_id
        return ObjectInfo(key, len(item.body), item.etag, item.last_modified, version_id=version)

    def head(self, key: str) -> ObjectInfo | None:
        full = self.prefix + key
        self.bucket.request("HeadObject", full)
        with self.bucket.lock:
            item = self.bucket.objects.get(full)
        self.bucket.request("HeadObject", full, "after")
        return None if item is None else self._info(key, item)

    def get(
        self, key: str, *, if_none_match: str | None = None, version_id: str | None = None
    ) -> ObjectData | None:
        full = self.prefix + key
        self.bucket.request("GetObject", full)
        with self.bucket.lock:
            item = self._version(full, version_id)
        self.bucket.request("GetObject", full, "after")
        if item is None:
            raise version_not_found(key, version_id)
        if if_none_match is not None and if_none_match == item.etag:
            return None
        return ObjectData(item.body, self._info(key, item))

    def _version(self, full: str, version_id: str | None) -> _Object | None:
        """The current object, or that version; None if absent or a delete marker."""
        if version_id is None:
            return self.bucket.objects.get(full)
        item = self.bucket.find(full, version_id)
        return None if item is None or item.deleted else item

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        etag: str | None = None,
    ) -> ObjectInfo:
        full = self.prefix + key
        self.bucket.request("PutObject", full)
        with self.bucket.lock:
            self._check(full, if_match, if_none_match)
            item = _Object(bytes(data), content_etag(data), self.bucket.clock())
            self.bucket.write(full, item)
        self.bucket.request("PutObject", full, "after")
        return self._info(key, item)

    def copy(
        self,
        source: str,
        key: str,
        *,
        version_id: str | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> ObjectInfo:
        """See Backend.copy (one request, whatever the size)."""
        full = self.prefix + key
        self.bucket.request("CopyObject", full)
        with self.bucket.lock:
            found = self._version(self.prefix + source, version_id)
            if found is None:
                raise version_not_found(source, version_id)
            self._check(full, if_match, if_none_match)
            item = _Object(found.body, found.etag, self.bucket.clock())
            self.bucket.write(full, item)
        self.bucket.request("CopyObject", full, "after")
        return self._info(key, item)

    def _check(self, full: str, if_match: str | None, if_none_match: str | None) -> None:
        current = self.bucket.objects.get(full)  # a current delete marker: absent
        if if_none_match == "*" and current is not None:
            raise PreconditionFailedError(f"'{full}' exists (If-None-Match: *)")
        if if_match is not None and (current is None or current.etag != if_match):
            raise PreconditionFailedError(f"'{full}' is not at ETag {if_match}")

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        full = self.prefix + key
        self.bucket.request("DeleteObject", full)
        with self.bucket.lock:
            self._check(full, if_match, None)
            self.bucket.remove(full)
        self.bucket.request("DeleteObject", full, "after")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        full_prefix = self.prefix + prefix
        self.bucket.request("ListObjectsV2", full_prefix)
        with self.bucket.lock:
            items = sorted(
                (name, item)
                for name, item in self.bucket.objects.items()
                if name.startswith(full_prefix)
            )
        for name, item in items:
            yield self._info(name[len(self.prefix) :], item)

    # -- versions ------------------------------------------------------------------------

    def versioning(self) -> str:
        self.bucket.request("GetBucketVersioning", "")
        return self.bucket.versioning

    def set_versioning(self, enabled: bool) -> None:
        self.bucket.request("PutBucketVersioning", "")
        with self.bucket.lock:
            if enabled or self.bucket.versioning != "off":
                self.bucket.versioning = "enabled" if enabled else "suspended"

    def list_versions(self, prefix: str = "") -> Iterator[VersionInfo]:
        full_prefix = self.prefix + prefix
        self.bucket.request("ListObjectVersions", full_prefix)
        with self.bucket.lock:
            found = sorted(
                (name, list(history))
                for name, history in self.bucket.versions.items()
                if name.startswith(full_prefix)
            )
        for name, history in found:
            for index, item in enumerate(history):
                yield VersionInfo(
                    name[len(self.prefix) :],
                    item.version_id,
                    len(item.body),
                    None if item.deleted else item.etag,
                    item.last_modified,
                    latest=index == 0,
                    deleted=item.deleted,
                )

    def delete_version(self, key: str, version_id: str) -> None:
        full = self.prefix + key
        self.bucket.request("DeleteObject", full)
        with self.bucket.lock:
            self.bucket.drop(full, version_id)
        self.bucket.request("DeleteObject", full, "after")

    def presign(self, key: str, expires: float) -> str:
        raise UnsupportedOperationError(_NO_URLS)

    # -- files ---------------------------------------------------------------------------

    def download(
        self,
        key: str,
        path: Path,
        progress: Progress | None = None,
        *,
        version_id: str | None = None,
    ) -> ObjectInfo:
        """See Backend.download (whole, whatever the size)."""
        data = self.get(key, version_id=version_id)
        assert data is not None
        return save_whole(data, path, progress)

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
        """See Backend.upload (one put, whatever the size)."""
        data = read_whole(path, unchanged)
        if progress is not None:
            progress(len(data))
        return self.put(key, data, if_match=if_match, if_none_match=if_none_match)

    # -- clock, uploads, bucket ----------------------------------------------------------

    def server_time(self) -> tuple[float, float] | None:
        now = self.bucket.clock()
        return (now, now)

    def stale_uploads(self, older_than: float) -> Iterable[StaleUpload]:
        with self.bucket.lock:
            return [
                upload
                for upload in self.bucket.uploads.values()
                if upload.key.startswith(self.prefix) and (upload.initiated or 0.0) < older_than
            ]

    def abort_upload(self, upload: StaleUpload) -> None:
        with self.bucket.lock:
            self.bucket.uploads.pop(upload.upload_id, None)

    def create_bucket(self, *, versioned: bool = False) -> None:
        with self.bucket.lock:
            self.bucket.exists = True
            if versioned and self.bucket.versioning == "off":
                self.bucket.versioning = "enabled"
