"""The storage Protocol the store is built on, and the values it passes around. No I/O.

A `Backend` is one bucket's objects under one prefix, addressed by keys relative to that
prefix: the store scopes it to its organization (`scoped("<prefix>/<org>/")`) and to its
own records, so no bucket key ever leaks into the store. Implementations: `S3Backend`
(boto3, the default), `ObstoreBackend` (the `fast` extra) and `MemoryBackend` (tests).
One contract suite runs unchanged against each of them.

Every write can carry a precondition (`if_match`, `if_none_match="*"`), which is what
makes each write's effect on the organization's usage exact (see docs/quotas.md).
On a versioned bucket a backend also lists a key's versions, reads and copies one, and
removes one for good (retention); `copy` is a server-side copy with preconditions on
the destination. `presign` gives a GET URL for clients without credentials.
Errors are ours: `KeyNotFoundError`, `PreconditionFailedError` (HTTP 412),
`OutcomeUnknownError` (sent, unanswered), `StorageUnavailableError`,
`StoragePermissionError`, `BucketNotFoundError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

__all__ = [
    "Backend",
    "Base",
    "Capabilities",
    "Endpoint",
    "ObjectData",
    "ObjectInfo",
    "Progress",
    "StaleUpload",
    "VersionInfo",
    "content_etag",
    "multipart_etag",
]

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ObjectInfo:
    """An object's size, ETag and Last-Modified time (server clock, seconds since 1970).
    `repeats`, on what a write returns: how many earlier attempts of it, their answers
    lost, may still be applied (a slow server), e.g. recreating the key after a delete.
    `version_id`: the version the server gave it, when it says (a versioned bucket)."""

    key: str
    size: int
    etag: str
    last_modified: float | None = None
    repeats: int = field(default=0, compare=False)
    version_id: str | None = field(default=None, compare=False)

    @property
    def modified_at(self) -> datetime | None:
        if self.last_modified is None:
            return None
        return datetime.fromtimestamp(self.last_modified, UTC)


@dataclass(frozen=True)
class VersionInfo:
    """One version of a key (or a delete marker, `deleted`) on a versioned bucket.
    `version_id` is "null" for what was written while versioning was off or suspended;
    `latest`: the key's current version (or its current delete marker)."""

    key: str
    version_id: str
    size: int  # 0 for a delete marker
    etag: str | None  # None for a delete marker
    last_modified: float | None
    latest: bool
    deleted: bool

    @property
    def modified_at(self) -> datetime | None:
        if self.last_modified is None:
            return None
        return datetime.fromtimestamp(self.last_modified, UTC)


@dataclass(frozen=True)
class ObjectData:
    """An object's bytes and what the server said about them."""

    body: bytes
    info: ObjectInfo


@dataclass(frozen=True)
class Capabilities:
    """What the server honours, as probed (see capability.py)."""

    conditional_put: bool
    conditional_delete: bool
    conditional_copy: bool = False  # CopyObject honours If-Match / If-None-Match (dest.)


@dataclass(frozen=True)
class StaleUpload:
    """An incomplete multipart upload left by a killed process."""

    key: str
    upload_id: str
    initiated: float | None


@dataclass(frozen=True)
class Base:
    """A write's precondition, what it expects to replace: a known object (etag, size),
    known absence (etag None, known), or nothing known. The journal records it too."""

    etag: str | None = None
    size: int = 0
    known: bool = False

    @staticmethod
    def absent() -> Base:
        return Base(None, 0, True)


@dataclass(frozen=True)
class Endpoint:
    """Where the backend connects, and credentials that override the settings' if given."""

    url: str | None
    access_key_id: str | None = None
    secret_access_key: str | None = None

    def __repr__(self) -> str:  # the secret never shows
        return f"Endpoint(url={self.url!r})"


class Backend(Protocol):
    """S3 operations on the objects under one prefix of one bucket."""

    @property
    def name(self) -> str:
        """Where the objects live, for messages (endpoint and bucket; never a secret)."""
        ...

    def scoped(self, prefix: str) -> Backend:
        """The same connection, with keys relative to `prefix` (which ends in '/')."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """The object's info, or None if it does not exist."""
        ...

    def get(
        self, key: str, *, if_none_match: str | None = None, version_id: str | None = None
    ) -> ObjectData | None:
        """The whole object (or that version of it); None if `if_none_match` matched
        (304). KeyNotFoundError if the key, or the version, is gone (or a delete marker)."""
        ...

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        etag: str | None = None,
    ) -> ObjectInfo:
        """Store an object (optionally only if it is unchanged / absent). `etag`: the
        data's content ETag (MD5) when the caller has computed it already."""
        ...

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Remove an object; with `if_match`, only that version (412 if absent or other)."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in key order, paginated."""
        ...

    def download(
        self,
        key: str,
        path: Path,
        progress: Progress | None = None,
        *,
        version_id: str | None = None,
    ) -> ObjectInfo:
        """Stream the object (or that version) into the file at `path` (ranged parts,
        bounded memory)."""
        ...

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
        """Stream a file to the object (multipart above the threshold, bounded memory).

        `unchanged` is asked after the last byte is sent and before the object is made
        visible: if it says False the upload is abandoned (a file rewritten meanwhile is
        never published half old, half new) and `PreconditionFailedError` is raised.
        """
        ...

    def server_time(self) -> tuple[float, float] | None:
        """Bounds of the server's clock now, from the responses seen so far (no request)."""
        ...

    def stale_uploads(self, older_than: float) -> Iterable[StaleUpload]:
        """Incomplete multipart uploads under the prefix started before `older_than`."""
        ...

    def abort_upload(self, upload: StaleUpload) -> None: ...

    def copy(
        self,
        source: str,
        key: str,
        *,
        version_id: str | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> ObjectInfo:
        """Server-side copy of `source` (that version) to `key`; the preconditions are on
        the destination (412: PreconditionFailedError). Above the single-copy limit
        (5 GiB) in parts, the precondition on the completion."""
        ...

    # -- versions (a bucket with versioning on; see VersionInfo) -----------------------------

    def versioning(self) -> str:
        """The bucket's versioning: "enabled", "suspended" or "off" (never enabled)."""
        ...

    def set_versioning(self, enabled: bool) -> None:
        """Turn the bucket's versioning on, or suspend it (it can never be off again)."""
        ...

    def list_versions(self, prefix: str = "") -> Iterator[VersionInfo]:
        """Every version and delete marker under `prefix`: key order, newest first within a
        key, paginated. Unversioned: each current object, as version "null"."""
        ...

    def delete_version(self, key: str, version_id: str) -> None:
        """Remove one version (or delete marker) for good; nothing if it is gone already.
        If it was the current one, the next newest becomes current."""
        ...

    def presign(self, key: str, expires: float) -> str:
        """A URL that GETs the object without credentials for `expires` seconds
        (`UnsupportedOperationError` where the backend has no URLs)."""
        ...

    def create_bucket(self, *, versioned: bool = False) -> None:
        """Create the bucket if it does not exist (tests, the embedded server, the CLI);
        `versioned`: turn versioning on unless it was ever set (a suspended bucket, the
        owner's choice, stays suspended)."""
        ...

    def close(self) -> None:
        """Release the connection's pools (the threads of transfers in parts), which every
        scope of it shares: closing one scope releases them for all. Idempotent, and not
        final: a later transfer makes them again."""
        ...


def content_etag(data: bytes) -> str:
    """The ETag S3 gives a single-part upload of `data`: its MD5, quoted."""
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


def multipart_etag(part_digests: Iterable[bytes]) -> str:
    """The ETag S3 gives a multipart upload: MD5 of the parts' MD5s, then '-<parts>'."""
    digests = list(part_digests)
    joined = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
    return f'"{joined}-{len(digests)}"'
