"""`ObjectStore`: the organization's key-value store, a thin API over its parts.

Public methods validate (key, permission, value type) and then make one call into the
node's parts: the view (node/view.py) for reads, the writer (node/writer.py) for writes;
the typed values are values.py's. The node (node/node.py) builds the parts that talk to
the bucket on first use, so constructing a store does no network I/O; the backend may be
injected (`ObjectStore(settings, backend=MemoryBackend())`).
"""

from __future__ import annotations

import copy
import logging
import weakref
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from .errors import (
    NOT_TRANSFERABLE,
    KeyNotFoundError,
    ObjectStoreError,
    StorageLimitExceededError,
    StoragePermissionError,
    StorageUnavailableError,
    StoreNotTransferableError,
)
from .keys import normalize_key
from .lean import PERMISSION_MESSAGES, KeyValuePair, ObjectStat, StorageUsage
from .node.node import Node, Parts
from .node.readahead import fetch_ahead
from .node.updates import read_modify_write
from .node.view import Listed
from .node.writer import Expect
from .objects import stat_of
from .transport.base import Backend
from .versions import VersionedValues

if TYPE_CHECKING:
    from .settings import ObjectStoreSettings

__all__ = ["KeyValuePair", "ObjectStat", "ObjectStore", "StorageUsage"]

Progress = Callable[[int], None]
R = TypeVar("R")

log = logging.getLogger("objectstore_s3")


class ObjectStore(VersionedValues):
    """An organization-wide Object Store on an S3 bucket, with a node-local cache."""

    def __init__(
        self,
        settings: ObjectStoreSettings | None = None,
        *,
        on_error: Callable[[ObjectStoreError], None] | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.settings = settings if settings is not None else _default_settings()
        self.on_error = on_error
        # The node reports through a weak reference: a store dropped without close() is
        # collected (its journal stays for a replay), as no part keeps it alive.
        self._node = Node(self.settings, backend=backend, report=_weak_report(self))

    def __reduce__(self) -> tuple[object, ...]:
        # Its journal, cache connection and lease belong to this process (see node.py).
        raise StoreNotTransferableError(NOT_TRANSFERABLE)

    def __repr__(self) -> str:
        return (
            f"ObjectStore(endpoint={self.settings.endpoint_url!r}, "
            f"bucket={self.settings.bucket!r}, organization_id={self.organization_id!r})"
        )

    # -- identity and limits -------------------------------------------------------------

    @property
    def organization_id(self) -> str:
        return self.settings.organization_id

    @property
    def project_id(self) -> int | str:
        return self.settings.project_id

    @property
    def max_size(self) -> int:
        return self.settings.storage_limit_bytes

    @property
    def max_files(self) -> int:
        return self.settings.storage_file_count

    def usage(self) -> StorageUsage:
        """The organization's bytes and files now, from a listing (others' saves in it)."""
        used = self._parts.quota.list_usage()
        return StorageUsage(used.bytes, used.files, self.max_size, self.max_files)

    def reconcile_usage(self, *, abort_uploads_older_than: float = 3600.0) -> StorageUsage:
        """Recount the organization's usage into the ledger (repairs drift), and abort its
        incomplete multipart uploads older than an hour: killed sync-backs leave them, and
        AWS bills their parts."""
        used = self._node.reconcile(abort_uploads_older_than)
        return StorageUsage(used.bytes, used.files, self.max_size, self.max_files)

    def _save_file(self, key: str, expect: Expect | None = None) -> bool:
        self._require("write")
        path = self._node.local.states.path_for(key)
        if not path.is_file():
            raise FileNotFoundError(
                f"No file to save for key '{key}': {path} does not exist. Write it first "
                "(e.g. df.to_parquet(store.get_file_path(key)))."
            )
        return self._guarded(lambda: self._parts.writer.put_file(key, path, expect=expect), key)

    def _save(self, key: str, data: bytes, expect: Expect | None = None) -> bool:
        self._require("write")
        w = self._parts.writer
        write = (lambda: w.put_checked(key, data, expect)) if expect else (lambda: w.put(key, data))
        return self._guarded(write, key)

    def _put(self, key: str, data: bytes, expect: Expect | None) -> ObjectStat:
        self._require("write")
        info = self._parts.writer.put_checked(key, data, expect)
        return stat_of(Listed(key, info.size, info.etag, info.last_modified))

    def _update(self, key: str, change: Callable[[bytes | None], bytes], attempts: int) -> bytes:
        self._require("read")
        self._require("write")
        return read_modify_write(self._parts.writer, key, change, attempts=attempts)[0]

    def _guarded(self, write: Callable[[], object], key: str) -> bool:
        """Run a write: a quota refusal is raised (research) or reported (live)."""
        try:
            write()
        except StorageUnavailableError as exc:
            _name_the_key(exc, key)  # the failed request may have been the store's own
            raise
        except StorageLimitExceededError as exc:
            if self.settings.mode == "research":
                raise
            self._report(exc)
            return False
        return True

    def _load(self, key: str, version: str | None = None) -> bytes | None:
        self._require("read")
        if version is not None:
            return self._parts.view.read_version(key, version)
        return self._parts.view.read(key)

    # -- keys ----------------------------------------------------------------------------

    def contains_key(self, key: str) -> bool:
        name = self._key(key)
        self._require("read")
        return self._parts.view.exists(name)

    def delete(self, key: str) -> bool:
        """Remove the object, its cache entry and its local file; KeyNotFoundError if absent."""
        name = self._key(key)
        self._require("delete")
        self._parts.writer.delete(name)
        return True

    @property
    def keys(self) -> list[str]:
        """Every key of the organization, sorted."""
        self._require("read")
        return [item.key for item in self._parts.view.listing()]

    def __iter__(self) -> Iterator[KeyValuePair]:
        """Each key once, sorted, from a snapshot: deleting while iterating is safe.
        Values are fetched ahead (max_concurrency at once, read_ahead_bytes waiting)."""
        self._require("read")
        view = self._parts.view
        for key, result in self._ahead([item.key for item in view.listing()]):
            try:
                value = result()
            except KeyNotFoundError:
                continue  # deleted since the snapshot (perhaps by this very loop)
            yield KeyValuePair(key, value)

    def read_many(self, keys: Iterable[str]) -> Iterator[tuple[str, bytes | None]]:
        """`(key, read_bytes(key))` for each key, in order, fetched ahead in parallel like
        iteration; a missing key raises KeyNotFoundError when its turn comes. The keys are
        checked before anything is fetched."""
        self._require("read")
        names = [self._key(key) for key in keys]
        return ((key, result()) for key, result in self._ahead(names))

    def _ahead(self, keys: list[str]) -> Iterator[tuple[str, Callable[[], bytes | None]]]:
        s, core = self.settings, self._parts
        return fetch_ahead(
            core.view.read,
            keys,
            mark=core.writer.written,
            workers=s.max_concurrency,
            max_bytes=s.read_ahead_bytes,
        )

    def __contains__(self, key: object) -> bool:
        return self.contains_key(key)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.keys)

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes `start`..`end`-1 of a key's value (fewer at its end) without fetching the
        rest: one ranged GET for a large object (the console's preview reads <= 1 MiB)."""
        from .node.ranges import read_range  # the one caller; kept out of the import block

        name = self._key(key)
        self._require("read")
        return read_range(self._parts, name, start, end)

    # -- local files -----------------------------------------------------------------------

    def get_file_path(
        self, key: str, *, version: str | None = None, progress: Progress | None = None
    ) -> str:
        """A real local file for the key, holding what the key holds on this node;
        `version`: a read-only file of that earlier version, never synced back.
        `progress(bytes)` is called as a download from the bucket goes."""
        name = self._key(key)
        if version is not None:
            return self._version_file(name, version, progress)
        self._require("read")
        self._require("write")
        parts = self._parts
        with parts.writer.locked(name), self._node.local.files.key_lock(name):
            return str(parts.view.materialize(name, progress))

    # -- lifecycle -----------------------------------------------------------------------

    def flush(self) -> None:
        """Upload pending write-behind work and changed local files, and settle usage.

        Raises if the bucket cannot be written (the work stays pending). A changed local
        file refused by the quota, or in conflict, is reported and stays local.
        """
        self._node.flush()

    def clear(self) -> None:
        """Write pending work, then drop this store's node-cache entries."""
        self.flush()
        self._node.local.cache.clear()

    def close(self) -> None:
        """Flush, stop the background flusher, and close every part the store opened
        (its cache, journal and connection). Local files stay."""
        self._node.close()

    def __enter__(self) -> ObjectStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._node.close(quiet=exc is not None)  # never replaces the block's own error

    def create_bucket(self) -> None:
        """Create the configured bucket if it does not exist."""
        self._connection().create_bucket()

    def _connection(self) -> Backend:
        return self._node.connection()

    @property
    def _parts(self) -> Parts:
        return self._node.parts

    # -- validation ------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        name = normalize_key(key)
        self._node.space.check(name)
        return name

    def _require(self, permission: str) -> None:
        if self._node.closed:
            raise ObjectStoreError("This ObjectStore is closed; open a new one.")
        if not getattr(self.settings.permissions, permission):
            raise StoragePermissionError(PERMISSION_MESSAGES[permission])

    def _report(self, error: ObjectStoreError) -> None:
        """An error that is reported rather than raised: log it and call on_error."""
        log.error("%s", error)
        if self.on_error is not None:
            try:
                self.on_error(error)
            except Exception:
                log.exception("on_error callback failed")

    # -- LEAN's PascalCase API -------------------------------------------------------------

    ContainsKey = contains_key
    Delete = delete
    GetFilePath = get_file_path
    Clear = clear
    Keys = keys

    MaxSize = max_size
    MaxFiles = max_files
    ProjectId = project_id
    OrganizationId = organization_id


def _default_settings() -> ObjectStoreSettings:
    """Settings from OBJECTSTORE_* and .env; pydantic-settings is imported when a store is
    made, not with the package (a third of its import time)."""
    from .settings import ObjectStoreSettings

    return ObjectStoreSettings()


def _weak_report(store: ObjectStore) -> Callable[[ObjectStoreError], None]:
    reference = weakref.ref(store)

    def report(error: ObjectStoreError) -> None:
        alive = reference()
        if alive is not None:
            alive._report(error)
        else:
            log.error("%s", error)

    return report


def _name_the_key(error: StorageUnavailableError, key: str) -> None:
    """Raise the error naming the key the user saved, unless it already does (the request
    that failed may have been the store's own: its ledger, the server's clock)."""
    if f"'{key}'" in str(error):
        return
    named = copy.copy(error)
    named.args = (f"Could not save '{key}': {error}",)
    raise named from error.__cause__  # the foreign error it maps, as the original says
