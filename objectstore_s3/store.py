"""`ObjectStore`: the organization's key-value store, composed of the other modules.

Public methods validate (key, permission, value type) and then call one private
primitive each: `_read`, `_write`, `_remove`, `_list`. The primitives compose the node
cache, the bucket backend and the local files. PascalCase aliases follow LEAN's API, and
`ReadJson[T](key)`-style generics pass `T` on as `type_`.
"""

from __future__ import annotations

import atexit
import functools
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, NamedTuple, TypeVar

from . import codecs
from .backend import ObjectInfo, S3Backend
from .cache import CacheEntry, NodeCache, namespace_of
from .errors import (
    KeyNotFoundError,
    LocalFileConflictError,
    ObjectDecodeError,
    ObjectStoreError,
    StorageLimitExceededError,
    StoragePermissionError,
)
from .journal import Journal, PendingEntry
from .keys import KeySpace, normalize_key
from .localfiles import LocalFiles
from .quota import Quota, Reservation, Usage
from .server import resolve_endpoint
from .settings import ObjectStoreSettings

__all__ = ["KeyValuePair", "ObjectStat", "ObjectStore", "StorageUsage"]

Progress = Callable[[int], None]

log = logging.getLogger("objectstore_s3")

R = TypeVar("R")

_PERMISSION_MESSAGES = {
    "read": "The current user does not have permission to read from the organization Object "
    "Store. Please contact your organization administrator to request permission.",
    "write": "The current user does not have permission to write to the organization Object "
    "Store. Please contact your organization administrator to request permission.",
    "delete": "The current user does not have permission to delete objects from the "
    "organization Object Store. Please contact your organization administrator to request "
    "permission.",
}


class KeyValuePair(NamedTuple):
    """One stored object during iteration; `.key/.value` and LEAN's `.Key/.Value`."""

    key: str
    value: bytes | None

    @property
    def Key(self) -> str:
        return self.key

    @property
    def Value(self) -> bytes | None:
        return self.value


class ObjectStat(NamedTuple):
    """What `stat` and `list_objects` tell about a key (etag is None while pending)."""

    key: str
    size: int
    etag: str | None
    last_modified: datetime | None


class StorageUsage(NamedTuple):
    bytes: int
    files: int
    max_size: int
    max_files: int


class _Generic(Generic[R]):
    """Makes `store.ReadJson[T](key)` call `read_json(key, type_=T)` (C#-style generics)."""

    def __init__(self, method: Callable[..., R]) -> None:
        self._method = method
        self.__doc__ = method.__doc__

    def __get__(self, instance: Any, owner: type | None = None) -> _BoundGeneric[R]:
        return _BoundGeneric(self._method, instance)


class _BoundGeneric(Generic[R]):
    def __init__(self, method: Callable[..., R], instance: Any) -> None:
        self._method = method
        self._instance = instance

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        return self._method(self._instance, *args, **kwargs)

    def __getitem__(self, type_: Any) -> Callable[..., R]:
        return functools.partial(self._method, self._instance, type_=type_)


class ObjectStore:
    """An organization-wide Object Store on an S3 bucket, with a node-local cache."""

    def __init__(
        self,
        settings: ObjectStoreSettings | None = None,
        *,
        on_error: Callable[[ObjectStoreError], None] | None = None,
    ) -> None:
        self.settings = settings if settings is not None else ObjectStoreSettings()
        self.on_error = on_error
        self._space = KeySpace(self.settings.prefix, self.settings.organization_id)
        self._backend_instance: S3Backend | None = None
        self._backend_lock = threading.Lock()
        namespace = namespace_of(
            self.settings.endpoint_url,
            self.settings.bucket,
            self.settings.prefix,
            self.settings.organization_id,
        )
        self._cache = NodeCache(
            self.settings.cache_dir / "cache", namespace, self.settings.cache_size_limit
        )
        self._journal = Journal(
            self.settings.cache_dir / "journal" / namespace, fsync=self.settings.journal_fsync
        )
        self._files = LocalFiles(
            self.settings.local_root / self.settings.organization_id,
            self.settings.cache_dir / "files",
        )
        self._quota = Quota(
            lambda: self._backend,
            self._space.internal("usage.json"),
            self._list_usage,
            self.settings.storage_limit_bytes,
            self.settings.storage_file_count,
        )
        # Capacity reserved for write-behind saves not uploaded yet, by key.
        self._reservations: dict[str, Reservation] = {}
        self._reservations_lock = threading.Lock()
        self._refused_versions: set[tuple[str, int, int]] = set()
        self._closed = False
        self._flush_lock = threading.RLock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        interval = self.settings.persistence_interval_seconds
        # Replay at once what a dead process on this node accepted but did not upload.
        replay = self._journal.adopt_orphans() > 0
        if interval > 0 or replay:
            self._flusher = threading.Thread(
                target=self._flush_loop,
                args=(interval, replay),
                name=f"objectstore-flusher-{self.organization_id}",
                daemon=True,
            )
            self._flusher.start()
        self._atexit = _exit_hook(self)
        atexit.register(self._atexit)

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
        """The organization's bytes and files (after settling this store's changes)."""
        used = self._quota.usage()
        return StorageUsage(used.bytes, used.files, self.max_size, self.max_files)

    def reconcile_usage(self) -> StorageUsage:
        """Recount the organization's usage from a listing (repairs drift in the ledger)."""
        used = self._quota.reconcile()
        return StorageUsage(used.bytes, used.files, self.max_size, self.max_files)

    # -- saving --------------------------------------------------------------------------

    def save(self, key: str, value: str | bytes | bytearray | memoryview | None = None) -> bool:
        """Save text (UTF-8) or bytes; without a value, upload the file at get_file_path(key)."""
        name = self._key(key)
        if value is None:
            self._require("write")
            try:
                return self._sync_file(name, required=True)
            except StorageLimitExceededError as exc:
                return self._refuse(exc)
        if isinstance(value, str):
            return self._save(name, value.encode("utf-8"))
        if isinstance(value, bytes | bytearray | memoryview):
            return self._save(name, bytes(value))
        raise TypeError(
            f"save() takes str or bytes, not {type(value).__name__}; use save_json() for "
            "objects or save_xml() for XML"
        )

    def save_string(self, key: str, text: str, encoding: str = "utf-8") -> bool:
        name = self._key(key)
        if not isinstance(text, str):
            raise TypeError(f"save_string() takes str, not {type(text).__name__}")
        return self._save(name, codecs.encode_text(text, encoding))

    def save_bytes(self, key: str, data: bytes | bytearray | memoryview) -> bool:
        name = self._key(key)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(
                f"save_bytes() takes bytes, bytearray or memoryview, not {type(data).__name__}"
            )
        return self._save(name, bytes(data))

    def save_json(self, key: str, obj: Any, type_: Any = None) -> bool:
        """JSON of dicts, lists, pydantic models, dataclasses, datetimes (validated if typed)."""
        name = self._key(key)
        return self._save(name, codecs.encode_json(obj, type_))

    def save_xml(self, key: str, obj: Any, root: str = "root", type_: Any = None) -> bool:
        """XML of an `Element`, or of a mapping written as `<root><k>v</k>...</root>`.

        `type_` is what `SaveXml[T](key, obj)` passes; the value's own type decides.
        """
        name = self._key(key)
        return self._save(name, codecs.encode_xml(obj, root))

    def _save(self, key: str, data: bytes) -> bool:
        self._require("write")
        return self._write(key, data)

    # -- reading -------------------------------------------------------------------------

    def read(self, key: str, encoding: str = "utf-8") -> str | None:
        return self.read_string(key, encoding)

    def read_string(self, key: str, encoding: str = "utf-8") -> str | None:
        name = self._key(key)
        data = self._load(name)
        return None if data is None else self._decode(name, codecs.decode_text, data, encoding)

    def read_bytes(self, key: str) -> bytes | None:
        return self._load(self._key(key))

    def read_json(self, key: str, type_: Any = None) -> Any:
        name = self._key(key)
        data = self._load(name)
        return None if data is None else self._decode(name, codecs.decode_json, data, type_)

    def read_xml(self, key: str, type_: Any = None) -> Any:
        name = self._key(key)
        data = self._load(name)
        return None if data is None else self._decode(name, codecs.decode_xml, data, type_)

    def _load(self, key: str) -> bytes | None:
        self._require("read")
        return self._read(key)

    @staticmethod
    def _decode(key: str, decoder: Callable[..., R], data: bytes, *args: Any) -> R:
        try:
            return decoder(data, *args)
        except ObjectDecodeError as exc:
            raise ObjectDecodeError(f"Object Store key '{key}': {exc}") from exc

    # -- keys ----------------------------------------------------------------------------

    def contains_key(self, key: str) -> bool:
        name = self._key(key)
        self._require("read")
        return self._contains(name)

    def delete(self, key: str) -> bool:
        """Remove the object, its cache entry and its local file; KeyNotFoundError if absent."""
        name = self._key(key)
        self._require("delete")
        self._remove(name)
        return True

    @property
    def keys(self) -> list[str]:
        """Every key of the organization, sorted."""
        self._require("read")
        return self._list()

    def __iter__(self) -> Iterator[KeyValuePair]:
        """Each key once, sorted, from a snapshot: deleting while iterating is safe."""
        self._require("read")
        for key in self._list():
            try:
                value = self._read(key)
            except KeyNotFoundError:
                continue  # deleted since the snapshot (perhaps by this very loop)
            yield KeyValuePair(key, value)

    def __contains__(self, key: object) -> bool:
        return self.contains_key(key)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, key: str) -> bytes:
        value = self.read_bytes(key)
        if value is None:
            raise KeyNotFoundError(key, f"The key '{key}' has a local file with no content yet.")
        return value

    # -- local files -----------------------------------------------------------------------

    def get_file_path(self, key: str) -> str:
        """A real local file for the key, holding the bucket's content if the key exists."""
        name = self._key(key)
        self._require("read")
        self._require("write")
        return str(self._materialize(name))

    # -- whole files and metadata (the CLI's operations) -------------------------------------

    def stat(self, key: str) -> ObjectStat:
        """Size, ETag and last-modified time of a key; KeyNotFoundError if absent."""
        name = self._key(key)
        self._require("read")
        pending = self._journal.get(name)
        if pending is not None:
            if pending.op == "delete":
                raise KeyNotFoundError(name)
            return ObjectStat(name, pending.length, None, None)
        info = self._backend.head(self._space.to_bucket(name))
        if info is None:
            raise KeyNotFoundError(name)
        return ObjectStat(name, info.size, info.etag, info.last_modified)

    def list_objects(self, prefix: str = "") -> list[ObjectStat]:
        """Every key starting with `prefix`, sorted, with its size, ETag and time."""
        self._require("read")
        found = {
            key: ObjectStat(key, info.size, info.etag, info.last_modified)
            for info in self._backend.list(self._space.root + prefix)
            if (key := self._space.from_bucket(info.key)) is not None
        }
        for entry in self._journal.entries():
            if not entry.key.startswith(prefix):
                continue
            if entry.op == "delete":
                found.pop(entry.key, None)
            else:
                found[entry.key] = ObjectStat(entry.key, entry.length, None, None)
        return [found[key] for key in sorted(found)]

    def download_file(self, key: str, path: str | Path, progress: Progress | None = None) -> None:
        """Stream a key's value into a local file (multipart, bounded memory)."""
        name = self._key(key)
        self._require("read")
        target = Path(path)
        body = self._pending_body(name)
        if body is not None:
            target.write_bytes(body)
            return
        try:
            self._backend.download_file(self._space.to_bucket(name), target, progress)
        except KeyNotFoundError as exc:
            raise KeyNotFoundError(name) from exc

    def upload_file(self, key: str, path: str | Path, progress: Progress | None = None) -> bool:
        """Store a local file's content under `key` (multipart, bounded memory, quota)."""
        name = self._key(key)
        self._require("write")
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"No file to upload for key '{name}': {source} does not exist")
        try:
            old = self._backend.head(self._space.to_bucket(name))
            self._upload_path(name, source, source.stat().st_size, old, progress)
        except StorageLimitExceededError as exc:
            return self._refuse(exc)
        return True

    # -- lifecycle -----------------------------------------------------------------------

    def flush(self) -> None:
        """Upload pending write-behind work and changed local files, and settle usage.

        Raises if the bucket cannot be written (the work stays pending). A changed local
        file refused by the quota is reported and stays local.
        """
        with self._flush_lock:
            self._flush_journal()
            self._sync_changed_files()
            self._quota.settle()

    def clear(self) -> None:
        """Write pending work, then drop this store's node-cache entries."""
        self.flush()
        self._cache.clear()

    def close(self) -> None:
        """Flush, stop the background flusher and release the cache. Local files stay."""
        if self._closed:
            return
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        try:
            self.flush()
            self._quota.settle(release=True)
        finally:
            self._closed = True
            atexit.unregister(self._atexit)
            self._journal.close()  # what could not be uploaded stays for a replay
            self._cache.close()

    def __enter__(self) -> ObjectStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def create_bucket(self) -> None:
        """Create the configured bucket if it does not exist."""
        self._backend.create_bucket()

    # -- primitives ------------------------------------------------------------------------

    @property
    def _backend(self) -> S3Backend:
        # Created on first use, so constructing a store does no I/O.
        with self._backend_lock:
            if self._backend_instance is None:
                backend = S3Backend(self.settings, resolve_endpoint(self.settings))
                if self.settings.endpoint_url == "local":
                    backend.create_bucket()  # the embedded server starts empty
                self._backend_instance = backend
            return self._backend_instance

    def _pending_body(self, key: str) -> bytes | None:
        """A write-behind value not uploaded yet; KeyNotFoundError for a pending delete;
        None when nothing is pending (or it was uploaded meanwhile: the bucket has it)."""
        pending = self._journal.get(key)
        if pending is None:
            return None
        if pending.op == "delete":
            raise KeyNotFoundError(key)
        return self._journal.data(pending)

    def _read(self, key: str) -> bytes | None:
        body = self._pending_body(key)
        if body is not None:
            return body
        if self._files.is_registered(key) and self._files.is_changed(key):
            return self._files.path_for(key).read_bytes()  # written here, not yet synced
        entry = self._cache.get(key)
        if entry is not None and not self._is_stale(entry):
            return entry.body
        try:
            data = self._backend.get(
                self._space.to_bucket(key), if_none_match=entry.etag if entry else None
            )
        except KeyNotFoundError as exc:
            self._cache.delete(key)
            if self._files.is_registered(key):
                return None  # handed out by get_file_path, nothing written yet
            raise KeyNotFoundError(key) from exc
        if data is None:  # 304: the cached copy is current
            assert entry is not None
            if self.settings.cache_max_age_seconds is not None:
                self._cache.put(key, entry.body, entry.etag)  # restart its age
            return entry.body
        self._cache.put(key, data.body, data.etag)
        return data.body

    def _is_stale(self, entry: CacheEntry) -> bool:
        """Whether a cached entry must be revalidated with the bucket before use."""
        max_age = self.settings.cache_max_age_seconds
        if max_age is not None:
            return time.time() - entry.validated_at > max_age
        return self.settings.cache_revalidate

    def _write(self, key: str, data: bytes) -> bool:
        try:
            if self.settings.persistence_interval_seconds > 0:
                self._accept(key, data)
            else:
                self._put_now(key, data)
        except StorageLimitExceededError as exc:
            return self._refuse(exc)
        if self._files.is_registered(key):
            self._files.forget(key, remove_file=False)
        return True

    def _put_now(self, key: str, data: bytes) -> None:
        """Write-through: reserve quota for the exact change, upload, then account for it."""
        old = self._backend.head(self._space.to_bucket(key))
        files, delta = (0, len(data) - old.size) if old else (1, len(data))
        reservation = self._quota.reserve(key, files, delta)
        try:
            self._upload(key, data)
        except BaseException:
            self._quota.cancel(reservation)
            raise
        self._quota.commit(reservation, files, delta)

    def _accept(self, key: str, data: bytes) -> None:
        """Write-behind: reserve quota now (so an accepted save is never refused later) and
        journal the save. Without a request, the key's current size is what the cache knows;
        if it knows nothing, the reservation assumes a new object."""
        entry = self._cache.get(key)
        with self._reservations_lock:
            previous = self._reservations.get(key)
            # Still pending: the bucket is as it was then. Else: cached means it exists.
            files = previous.files if previous is not None else int(entry is None)
            delta = len(data) - (len(entry.body) if entry is not None else 0)
            reservation = self._quota.reserve(key, files, delta, replacing=previous)
            try:
                self._journal.record(key, "put", data)
            except BaseException:
                self._quota.cancel(reservation)
                if previous is not None:
                    self._quota.hold(previous)
                raise
            self._reservations[key] = reservation

    def _refuse(self, error: StorageLimitExceededError) -> bool:
        """A save over quota: raised in research mode, else reported and answered False."""
        if self.settings.mode == "research":
            raise error
        self._report(error)
        return False

    def _list_usage(self) -> Usage:
        """Bytes and objects under the organization's prefix, from a listing."""
        total = count = 0
        for info in self._backend.list(self._space.root):
            total += info.size
            count += 1
        return Usage(total, count)

    def _upload(self, key: str, data: bytes) -> None:
        etag = self._backend.put(self._space.to_bucket(key), data)
        # Only now that the bucket accepted it may the cache claim it.
        self._cache.put(key, data, etag)

    def _remove(self, key: str) -> None:
        registered = self._files.is_registered(key)
        pending = self._journal.get(key)
        if pending is not None:
            exists = pending.op == "put"
        elif not self.settings.cache_revalidate and self._cache.contains(key):
            exists = True  # the node cache only holds what the bucket accepted
        else:
            exists = self._backend.head(self._space.to_bucket(key)) is not None
        if not exists and not registered:
            self._cache.delete(key)
            raise KeyNotFoundError(
                key, f"The key '{key}' does not exist in the Object Store. {_DELETE_HINT}"
            )
        if self.settings.persistence_interval_seconds > 0:
            self._journal.record(key, "delete")
            with self._reservations_lock:
                reservation = self._reservations.pop(key, None)
            if reservation is not None:
                self._quota.cancel(reservation)  # the pending save will never be uploaded
        elif exists:
            self._delete_now(key)
        self._cache.delete(key)
        if registered or self._files.path_for(key).exists():
            self._files.forget(key, remove_file=True)

    def _delete_now(self, key: str) -> None:
        bucket_key = self._space.to_bucket(key)
        old = self._backend.head(bucket_key)
        if old is None:
            return
        self._quota.renew()
        self._backend.delete(bucket_key)
        self._quota.record(-1, -old.size)

    def _contains(self, key: str) -> bool:
        pending = self._journal.get(key)
        if pending is not None:
            return pending.op == "put"
        if self._files.is_registered(key):
            return True
        if not self.settings.cache_revalidate and self._cache.contains(key):
            return True
        return self._backend.head(self._space.to_bucket(key)) is not None

    def _list(self) -> list[str]:
        keys = {
            key
            for info in self._backend.list(self._space.root)
            if (key := self._space.from_bucket(info.key)) is not None
        }
        keys.update(self._files.registered_keys())
        for key, op in self._journal.pending_keys().items():
            if op == "put":
                keys.add(key)
            else:
                keys.discard(key)
        return sorted(keys)

    # -- write-behind ----------------------------------------------------------------------

    def _flush_journal(self) -> None:
        """Upload every pending entry, in parallel; entries that fail stay journaled.

        Entries are one per key, so their order does not matter; the first error is
        raised once every other entry has had its try.
        """
        with self._flush_lock:
            entries = self._journal.entries()
            if len(entries) <= 1:
                for entry in entries:
                    self._apply(entry)
                return
            workers = min(self.settings.max_concurrency, len(entries))
            with ThreadPoolExecutor(workers, thread_name_prefix="objectstore-upload") as pool:
                futures = [pool.submit(self._apply, entry) for entry in entries]
            errors = [error for future in futures if (error := future.exception())]
            if errors:
                raise errors[0]

    def _apply(self, entry: PendingEntry) -> None:
        if entry.op == "delete":
            self._delete_now(entry.key)
            self._cache.delete(entry.key)
            self._journal.complete(entry)
            return
        data = self._journal.data(entry)
        if data is None:
            return  # already uploaded and completed by a concurrent flush
        with self._reservations_lock:
            # Entries replayed from a dead process have no reservation here: their save was
            # accepted, so it is uploaded and counted even if that overdraws this lease.
            reservation = self._reservations.pop(entry.key, None) or Reservation(0, 0)
        old = self._backend.head(self._space.to_bucket(entry.key))
        files, delta = (0, len(data) - old.size) if old else (1, len(data))
        try:
            self._upload(entry.key, data)
        except BaseException:
            with self._reservations_lock:
                if entry.key in self._reservations:  # saved again meanwhile
                    self._quota.cancel(reservation)
                else:
                    self._reservations[entry.key] = reservation
            raise
        self._quota.commit(reservation, files, delta)
        self._journal.complete(entry)

    def _flush_loop(self, interval: float, replay: bool) -> None:
        """Background flusher: every interval, with capped exponential backoff on failure."""
        failures = 0
        delay = 0.0 if replay else interval
        while not self._stop.wait(delay):
            try:
                self.flush()
            except Exception as exc:  # the thread must survive anything; the journal keeps it
                failures += 1
                if failures == 1:
                    error = (
                        exc
                        if isinstance(exc, ObjectStoreError)
                        else ObjectStoreError(
                            f"Background flush failed ({type(exc).__name__}: {exc}); pending work "
                            "stays journaled and is retried."
                        )
                    )
                    self._report(error)
                base = interval if interval > 0 else 1.0
                delay = min(base * 2**failures, 60.0) * random.uniform(0.5, 1.0)  # noqa: S311
                continue
            failures = 0
            if interval <= 0:
                return  # write-through: the replay was all there was to do
            delay = interval

    def _materialize(self, key: str) -> Path:
        """Make the key's local file current, never silently replacing unsynced work."""
        path = self._files.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        bucket_key = self._space.to_bucket(key)
        with self._files.key_lock(key):  # one download per key on this node at a time
            info = self._backend.head(bucket_key)
            state = self._files.state(key)
            if info is None:
                if state is not None and path.exists() and not self._files.is_changed(key):
                    path.unlink()  # a copy of an object deleted elsewhere since
                self._files.register(key)
                return path
            if state is not None and path.exists():
                if state.etag == info.etag:
                    # Current: synced by this process, another one, or an earlier run; any
                    # changes since are compared against that state and synced later.
                    self._files.register(key, state)
                    return path
                if self._files.is_changed(key):
                    raise self._conflict(key, path)
            elif self._files.modified_after(path, info.last_modified):
                raise self._conflict(key, path)  # a file we know nothing about, and newer
            temporary = self._files.temporary_path(key)
            try:
                self._backend.download_file(bucket_key, temporary)
                self._files.stamp(temporary, info.last_modified)
                temporary.replace(path)
            finally:
                temporary.unlink(missing_ok=True)
            self._files.record(key, info.etag)
            return path

    @staticmethod
    def _conflict(key: str, path: Path) -> LocalFileConflictError:
        return LocalFileConflictError(
            f"The local file for '{key}' at {path} has changes that were not saved, and the "
            "bucket's copy changed too; neither was overwritten. Call save(key) to keep "
            "yours, or delete the local file and call get_file_path(key) to take the bucket's."
        )

    def _sync_file(self, key: str, *, required: bool, explicit: bool = True) -> bool:
        """Upload the key's local file. An automatic sync (not `explicit`) refuses to
        overwrite a bucket object that changed since this file was last synced."""
        path = self._files.path_for(key)
        if not path.is_file():
            if required:
                raise FileNotFoundError(
                    f"No file to save for key '{key}': {path} does not exist. Write it first "
                    "(e.g. df.to_parquet(store.get_file_path(key)))."
                )
            return False
        bucket_key = self._space.to_bucket(key)
        with self._files.key_lock(key):
            before = path.stat()  # a write during the upload will show as a change
            old = self._backend.head(bucket_key)
            state = self._files.state(key)
            if not explicit and old is not None and (state is None or state.etag != old.etag):
                raise self._conflict(key, path)
            etag = self._upload_path(key, path, before.st_size, old)
            self._files.record(key, etag, before)
        return True

    def _upload_path(
        self,
        key: str,
        path: Path,
        size: int,
        old: ObjectInfo | None,
        progress: Progress | None = None,
    ) -> str | None:
        """Upload a file within quota (write-through); returns the new object's ETag.

        `old` is the object as it was before (None: absent), for the quota's size delta.
        """
        bucket_key = self._space.to_bucket(key)
        files, delta = (0, size - old.size) if old else (1, size)
        reservation = self._quota.reserve(key, files, delta)
        try:
            self._backend.upload_file(path, bucket_key, progress)
        except BaseException:
            self._quota.cancel(reservation)
            raise
        self._quota.commit(reservation, files, delta)
        self._cache.delete(key)
        info = self._backend.head(bucket_key)
        return info.etag if info else None

    def _sync_changed_files(self) -> None:
        """Automatic sync (flush, close, clear, timer). A quota refusal or a conflict is
        reported once per version of the file, and the file stays local."""
        for key in self._files.changed_keys():
            try:
                self._sync_file(key, required=False, explicit=False)
            except (StorageLimitExceededError, LocalFileConflictError) as exc:
                stat = self._files.path_for(key).stat()
                version = (key, stat.st_size, stat.st_mtime_ns)
                if version not in self._refused_versions:
                    self._refused_versions.add(version)
                    self._report(exc)

    # -- validation ------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        name = normalize_key(key)
        self._space.to_bucket(name)  # length check against the full bucket key
        return name

    def _require(self, permission: str) -> None:
        if self._closed:
            raise ObjectStoreError("This ObjectStore is closed; open a new one.")
        if not getattr(self.settings.permissions, permission):
            raise StoragePermissionError(_PERMISSION_MESSAGES[permission])

    def _report(self, error: ObjectStoreError) -> None:
        """An error that is reported rather than raised: log it and call on_error."""
        log.error("%s", error)
        if self.on_error is not None:
            try:
                self.on_error(error)
            except Exception:
                log.exception("on_error callback failed")

    # -- LEAN's PascalCase API -------------------------------------------------------------

    Save = save
    SaveString = save_string
    SaveBytes = save_bytes
    SaveJson: _Generic[bool] = _Generic(save_json)
    SaveXml: _Generic[bool] = _Generic(save_xml)
    Read = read
    ReadString = read_string
    ReadBytes = read_bytes
    ReadJson: _Generic[Any] = _Generic(read_json)
    ReadXml: _Generic[Any] = _Generic(read_xml)
    ContainsKey = contains_key
    Delete = delete
    GetFilePath = get_file_path
    Clear = clear
    Keys = keys

    @property
    def MaxSize(self) -> int:
        return self.max_size

    @property
    def MaxFiles(self) -> int:
        return self.max_files

    @property
    def ProjectId(self) -> int | str:
        return self.project_id

    @property
    def OrganizationId(self) -> str:
        return self.organization_id


def _exit_hook(store: ObjectStore) -> Callable[[], None]:
    """An atexit hook that flushes the store if it is still alive, without keeping it alive."""
    reference = weakref.ref(store)

    def hook() -> None:
        alive = reference()
        if alive is not None:
            try:
                alive.close()
            except ObjectStoreError as exc:
                log.error("Object Store could not flush at exit; the journal keeps it: %s", exc)

    return hook


_DELETE_HINT = (
    "Please use ObjectStore.ContainsKey(key) to check if an object exists before deleting."
)
