"""An in-memory `Backend`: one dict as the bucket, for fast tests of the whole store.

It keeps S3's semantics where the store depends on them: MD5 ETags, conditional puts and
deletes (412), 304 on a matching If-None-Match, key-ordered listings, Last-Modified on
the server's clock. Several `MemoryBackend`s on one `MemoryBucket` are several nodes (or
scopes) on one bucket. Tests can count requests (`on_request`), inject faults
(`inject`), and drive the server's clock (`clock`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from objectstore_s3.errors import BucketNotFoundError, KeyNotFoundError, PreconditionFailedError

from .base import ObjectData, ObjectInfo, Progress, StaleUpload, content_etag
from .transfer import read_whole, save_whole

__all__ = ["MemoryBackend", "MemoryBucket"]

# A fault hook: called with (operation, bucket key, "before" | "after"); may raise.
Fault = Callable[[str, str, str], None]


@dataclass
class _Object:
    body: bytes
    etag: str
    last_modified: float


@dataclass
class MemoryBucket:
    """The shared state: objects by bucket key, the server's clock, test hooks."""

    clock: Callable[[], float] = time.time
    name: str = "memory"
    exists: bool = True
    objects: dict[str, _Object] = field(default_factory=dict)
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
            inside = key is not None and key.startswith(prefix) and operation != "ListObjectsV2"
            callback(operation, key[len(prefix) :] if inside and key else None)

        self.bucket.hooks.append(hook)

    def inject(self, fault: Fault) -> None:
        self.bucket.faults.append(fault)

    def close(self) -> None:
        """Nothing to release: the bucket is a dict, shared with the other scopes."""

    # -- objects -------------------------------------------------------------------------

    def _info(self, key: str, item: _Object) -> ObjectInfo:
        return ObjectInfo(key, len(item.body), item.etag, item.last_modified)

    def head(self, key: str) -> ObjectInfo | None:
        full = self.prefix + key
        self.bucket.request("HeadObject", full)
        with self.bucket.lock:
            item = self.bucket.objects.get(full)
        self.bucket.request("HeadObject", full, "after")
        return None if item is None else self._info(key, item)

    def get(self, key: str, *, if_none_match: str | None = None) -> ObjectData | None:
        full = self.prefix + key
        self.bucket.request("GetObject", full)
        with self.bucket.lock:
            item = self.bucket.objects.get(full)
        self.bucket.request("GetObject", full, "after")
        if item is None:
            raise KeyNotFoundError(key)
        if if_none_match is not None and if_none_match == item.etag:
            return None
        return ObjectData(item.body, self._info(key, item))

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
            self.bucket.objects[full] = item
        self.bucket.request("PutObject", full, "after")
        return self._info(key, item)

    def _check(self, full: str, if_match: str | None, if_none_match: str | None) -> None:
        current = self.bucket.objects.get(full)
        if if_none_match == "*" and current is not None:
            raise PreconditionFailedError(f"'{full}' exists (If-None-Match: *)")
        if if_match is not None and (current is None or current.etag != if_match):
            raise PreconditionFailedError(f"'{full}' is not at ETag {if_match}")

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        full = self.prefix + key
        self.bucket.request("DeleteObject", full)
        with self.bucket.lock:
            self._check(full, if_match, None)
            self.bucket.objects.pop(full, None)
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

    def download(self, key: str, path: Path, progress: Progress | None = None) -> ObjectInfo:
        """See Backend.download (whole, whatever the size)."""
        data = self.get(key)
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

    def create_bucket(self) -> None:
        self.bucket.exists = True
