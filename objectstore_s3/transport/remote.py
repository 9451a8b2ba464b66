"""What the two S3 transports (boto3's and obstore's) do alike, written once.

A backend is a connection, shared by every scope made from it, plus the key prefix of
its scope. A conditional write whose answer was lost and then met 412 is looked up (a
HEAD comparing the ETag with what was sent). Files move whole up to the part size and
in parts above it (transfer.py), the parts through the transport's `PartClient`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Self, TypeVar

from objectstore_s3.errors import OutcomeUnknownError

from .base import ObjectData, ObjectInfo, Progress
from .failures import version_not_found
from .transfer import (
    PartClient,
    TransferPool,
    download_parts,
    read_whole,
    save_whole,
    upload_parts,
)

if TYPE_CHECKING:
    from objectstore_s3.settings import ObjectStoreSettings

    from .base import Endpoint

__all__ = ["RemoteBackend", "RemoteConnection"]


class RemoteConnection:
    """What every connection to an S3 server keeps, whatever its client library (each
    transport's client.py adds its client): where it goes, how often a request is tried,
    how files are cut into parts, and the threads that move the parts."""

    def __init__(self, settings: ObjectStoreSettings, endpoint: Endpoint) -> None:
        self.settings = settings
        self.endpoint_spec = endpoint
        self.bucket = settings.bucket
        self.endpoint = endpoint.url or "AWS S3"
        self.attempts = settings.max_attempts
        self.chunk = settings.multipart_chunksize_bytes  # the part size of transfers
        self.threshold = settings.multipart_threshold_bytes  # files above it: in parts
        self.concurrency = settings.max_concurrency
        self._pool = TransferPool(self.concurrency)

    @property
    def pool(self) -> ThreadPoolExecutor:
        return self._pool.get()

    def close(self) -> None:
        """Release the transfer threads (idempotent; the next transfer makes them again)."""
        self._pool.close()


C = TypeVar("C", bound=RemoteConnection)


class RemoteBackend(ABC, Generic[C]):
    """The part of a `Backend` on an S3 server that no client library changes: its scope,
    `close`, the look after a lost answer, and whole-file transfers."""

    _connection_class: type[C]  # what a backend made without a connection opens

    def __init__(
        self,
        settings: ObjectStoreSettings,
        endpoint: Endpoint,
        *,
        prefix: str = "",
        connection: C | None = None,
    ) -> None:
        self._c: C = (
            connection if connection is not None else self._connection_class(settings, endpoint)
        )
        self.prefix = prefix

    @property
    def connection(self) -> C:
        """The connection every scope of this backend shares."""
        return self._c

    @property
    def name(self) -> str:
        return f"{self._c.endpoint} bucket '{self._c.bucket}'"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self._c.endpoint!r}, bucket={self._c.bucket!r})"

    def scoped(self, prefix: str) -> Self:
        return type(self)(
            self._c.settings, self._c.endpoint_spec, prefix=self.prefix + prefix, connection=self._c
        )

    def close(self) -> None:
        """Release the connection's pools: every scope's, as they share it (idempotent)."""
        self._c.close()

    # -- what each transport does its own way ----------------------------------------------

    @abstractmethod
    def head(self, key: str, *, version_id: str | None = None) -> ObjectInfo | None:
        """Backend.head; of that version if given (None if gone, or a delete marker)."""

    @abstractmethod
    def get(
        self, key: str, *, if_none_match: str | None = None, version_id: str | None = None
    ) -> ObjectData | None: ...

    @abstractmethod
    def get_range_into(
        self, key: str, start: int, end: int, if_match: str, fd: int, version_id: str | None = None
    ) -> int:
        """transfer.RangeClient: one ranged part of a download."""

    @abstractmethod
    def multipart(self) -> PartClient:
        """The requests of a multipart upload on this scope."""

    if TYPE_CHECKING:  # Backend.put, with the transport's own signature
        put: Callable[..., ObjectInfo]

    # -- the look after a lost answer ------------------------------------------------------

    def landed(self, key: str, expected: str | None) -> bool:
        """Whether the object now has the ETag a write would have given it (the `verify`
        of a conditional write's retries)."""
        info = self.head(key)
        return info is not None and info.etag == expected

    def applied(self, key: str, expected: str | None) -> ObjectInfo:
        """The object a write seen to have landed (`APPLIED`) made."""
        info = self.head(key)
        if info is None or info.etag != expected:  # pragma: no cover - raced away
            raise OutcomeUnknownError(f"The write of '{key}' may not have landed")
        return info

    # -- files -------------------------------------------------------------------------------

    def download(
        self,
        key: str,
        path: Path,
        progress: Progress | None = None,
        *,
        version_id: str | None = None,
    ) -> ObjectInfo:
        """See Backend.download: whole up to the part size, else in ranged parts."""
        info = self.head(key, version_id=version_id)
        if info is None:
            raise version_not_found(key, version_id)
        if info.size <= self._c.chunk:
            data = self.get(key, version_id=version_id)
            assert data is not None
            return save_whole(data, path, progress)
        download_parts(
            self,
            info,
            path,
            chunk=self._c.chunk,
            pool=self._c.pool,
            progress=progress,
            version_id=version_id,
        )
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
        """See Backend.upload: one PUT up to the multipart threshold, else in parts."""
        size = path.stat().st_size
        if size > self._c.threshold:
            return upload_parts(
                self.multipart(),
                key,
                path,
                chunk=self._c.chunk,
                pool=self._c.pool,
                if_match=if_match,
                if_none_match=if_none_match,
                unchanged=unchanged,
                progress=progress,
            )
        data = read_whole(path, unchanged)
        info = self.put(key, data, if_match=if_match, if_none_match=if_none_match)
        if progress is not None:
            progress(size)
        return info
