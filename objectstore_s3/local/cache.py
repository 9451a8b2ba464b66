"""The node-local read cache, on diskcache.

An entry is the raw body behind a small header: the object's ETag and size, when it was
last validated, and a CRC-32 of the body (a damaged entry fails it and reads as a miss;
CRC-32 costs a fifth of a cryptographic digest, and detecting accidental damage is all it
is for: the folder is the user's own). `meta()` reads only the header, so a writer can
learn a key's ETag and size without reading the value. The `Disk` below refuses to
pickle or unpickle anything (diskcache's default pickling is a code-execution risk for
whoever can write the folder, CVE-2025-69872).

Every store on the node shares the folder, so fills are ordered against writes across
processes: each key has a generation that every write replaces, a read takes it before its
request and fills only if it is unchanged (a read racing a delete cannot resurrect the
value). Real storage errors (a damaged database, an I/O error) rebuild the cache,
removing only the files diskcache made; a timeout on the database lock is a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import sqlite3
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import diskcache

from objectstore_s3.fs import private_directory

from .cachefill import Fill, PendingFills

__all__ = ["CacheEntry", "CacheMeta", "NodeCache", "namespace_of"]

log = logging.getLogger("objectstore_s3")

_PENDING_FILL_BYTES = 32 * 1024 * 1024  # fills behind reads held in memory at most
_MAGIC = b"OSC2"
_HEADER = struct.Struct(">4sdQIB")  # magic, validated_at, size, crc32, etag length
_DAMAGE = (sqlite3.DatabaseError, OSError)
_DISKCACHE_FILES = re.compile(r"^cache\.db(-wal|-shm|-journal)?$")
_VALUE_FOLDER = re.compile(r"^[0-9a-f]{2}$")


class _UnsafeEntry(Exception):
    """An entry that would need unpickling: refused."""


class RawDisk(diskcache.Disk):  # type: ignore[misc]
    """A diskcache Disk that stores str keys and bytes values raw and never unpickles."""

    def put(self, key: Any) -> tuple[Any, bool]:
        if not isinstance(key, str):
            raise TypeError("cache keys are str")
        return super().put(key)  # type: ignore[no-any-return]

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise _UnsafeEntry("refusing to unpickle a cache key")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        if not read and not isinstance(value, bytes | int):
            raise TypeError("cache values are bytes")
        return super().store(value, read, key)

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
        if mode == diskcache.core.MODE_PICKLE:
            raise _UnsafeEntry("refusing to unpickle a cache value")
        return super().fetch(mode, filename, value, read)


@dataclass(frozen=True)
class CacheMeta:
    etag: str
    size: int
    validated_at: float


@dataclass(frozen=True)
class CacheEntry:
    body: bytes
    etag: str
    validated_at: float

    @property
    def meta(self) -> CacheMeta:
        return CacheMeta(self.etag, len(self.body), self.validated_at)


def namespace_of(*parts: str) -> str:
    """A short stable name for (endpoint, bucket, prefix, organization)."""
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=10).hexdigest()


def _frame(body: bytes, etag: str, validated_at: float) -> bytes:
    etag_bytes = etag.encode("ascii", "replace")[:255]
    header = _HEADER.pack(_MAGIC, validated_at, len(body), zlib.crc32(body), len(etag_bytes))
    return header + etag_bytes + body


def _parse_header(head: bytes) -> tuple[CacheMeta, int, int] | None:
    """(meta, crc, body offset) of a framed entry's first bytes, or None if not ours."""
    if len(head) < _HEADER.size:
        return None
    magic, validated_at, size, crc, etag_len = _HEADER.unpack_from(head)
    start = _HEADER.size + etag_len
    if magic != _MAGIC or len(head) < start:
        return None
    etag = head[_HEADER.size : start].decode("ascii", "replace")
    return CacheMeta(etag, size, validated_at), crc, start


class NodeCache:
    """One organization's view of the node's cache folder (shared by every store on it)."""

    def __init__(self, directory: Path, namespace: str, size_limit: int) -> None:
        self.directory = directory
        self.namespace = namespace
        self.size_limit = size_limit
        # One value may take at most a quarter of the cache, so it cannot evict the rest.
        self.max_value_size = size_limit // 4
        self._folder = str(directory)
        self._lock = threading.Lock()
        self._cache: diskcache.Cache | None = None
        self._fills = PendingFills(self._land, max_bytes=_PENDING_FILL_BYTES)
        self._stored = 0  # bytes stored since the last cull

    def _open(self, check_folder: bool = False) -> diskcache.Cache:
        # Reads skip the folder check (a stat per read): a deleted folder shows up as a
        # failed read of a value file, or is noticed by the next write.
        if self._cache is None or (check_folder and not os.path.isdir(self._folder)):
            self._close_quietly()
            private_directory(self.directory)
            self._cache = diskcache.Cache(
                self._folder,
                disk=RawDisk,
                size_limit=self.size_limit,
                eviction_policy="least-recently-stored",
                # Values up to 256 KiB stay in the database: a cached read is one row
                # read, no value file to open (SQLite reads small blobs faster than files).
                disk_min_file_size=256 * 1024,
                # diskcache culls on every set (a search for expired entries, which
                # this cache never has, and a volume check): ~15% of a save's CPU.
                # Entries are culled after each size_limit/64 stored instead.
                cull_limit=0,
                timeout=5,
            )
        return self._cache

    def _key(self, key: str) -> str:
        return f"{self.namespace}/{key}"

    def _generation_key(self, key: str) -> str:
        return f"{self.namespace}#gen/{key}"

    # -- reading -----------------------------------------------------------------------

    def get(self, key: str) -> CacheEntry | None:
        """The cached entry, or None (also for a damaged or unreadable entry)."""
        pending = self._pending(key)
        if pending is not None:
            return CacheEntry(pending.body, pending.etag, pending.validated_at)
        blob = self._guarded(lambda cache: cache.get(self._key(key), read=False), key)
        if not isinstance(blob, bytes):
            return None
        parsed = _parse_header(blob)
        if parsed is not None:
            meta, crc, start = parsed
            body = blob[start:]
            if len(body) == meta.size and zlib.crc32(body) == crc:
                return CacheEntry(body, meta.etag, meta.validated_at)
        log.warning("Dropped a damaged cache entry for '%s'", key)
        self.invalidate(key)
        return None

    def meta(self, key: str) -> CacheMeta | None:
        """The entry's ETag, size and age, reading only its header."""
        pending = self._pending(key)
        if pending is not None:
            return CacheMeta(pending.etag, len(pending.body), pending.validated_at)
        value = self._guarded(lambda cache: cache.get(self._key(key), read=True), key)
        if value is None:
            return None
        if isinstance(value, bytes):
            head = value[: _HEADER.size + 255]
        else:
            handle: BinaryIO = value
            with handle:
                head = handle.read(_HEADER.size + 255)
        parsed = _parse_header(head)
        return None if parsed is None else parsed[0]

    def _pending(self, key: str) -> Fill | None:
        """A fill not yet landed, if it still passes the check it will land with."""
        fill = self._fills.get(key)
        if fill is None or self.generation(key) != fill.generation:
            return None
        return fill

    def generation(self, key: str) -> int:
        """The key's write generation; a fill is accepted only if it is still this."""
        value = self._guarded(lambda cache: self._token(cache, key), key)
        return value if isinstance(value, int) else 0

    # -- writing -------------------------------------------------------------------------

    def fill(
        self, key: str, body: bytes, etag: str, generation: int, *, had_entry: bool = True
    ) -> None:
        """Cache what a read got, unless a write to the key happened since `generation`.
        The database write happens behind the read (cachefill.py). A value too large to
        cache only removes the stale entry, if the read found one (`had_entry`)."""
        fill = Fill(body, etag, generation, time.time())
        if len(body) > self.max_value_size:
            if had_entry:
                self._land(key, fill, queued=False)
        elif not self._fills.add(key, fill):
            self._land(key, fill, queued=False)

    def _land(self, key: str, fill: Fill, queued: bool = True) -> None:
        def apply(cache: diskcache.Cache) -> None:
            if queued and not self._fills.is_pending(key, fill):
                return  # dropped by a write or a clear of this process meanwhile
            with cache.transact():
                if cache.get(self._generation_key(key)) == fill.generation:
                    self._set(cache, key, fill.body, fill.etag, fill.validated_at)

        self._guarded(apply, key, write=True)

    def settle(self) -> None:
        """Wait for the fills behind reads to land (tests; close does it too)."""
        self._fills.settle()

    def store(self, key: str, body: bytes, etag: str, validated_at: float | None = None) -> None:
        """Cache a value the bucket accepted (a write: bumps the generation)."""
        at = time.time() if validated_at is None else validated_at
        self._fills.discard(key)

        def apply(cache: diskcache.Cache) -> None:
            with cache.transact():
                self._bump(cache, key)
                self._set(cache, key, body, etag, at)

        self._guarded(apply, key, write=True)

    def invalidate(self, key: str) -> None:
        """Forget the key (a write or delete whose result is not cached)."""
        self._fills.discard(key)

        def apply(cache: diskcache.Cache) -> None:
            with cache.transact():
                self._bump(cache, key)
                cache.delete(self._key(key))

        self._guarded(apply, key, write=True)

    def touch(self, key: str, entry: CacheEntry, generation: int) -> None:
        """Restart an entry's age after a revalidation (304), unless a write to the key
        happened since `generation` (the entry may be replaced by a newer value)."""

        def apply(cache: diskcache.Cache) -> None:
            with cache.transact():
                if cache.get(self._generation_key(key)) == generation:
                    self._set(cache, key, entry.body, entry.etag, time.time())

        self._guarded(apply, key, write=True)

    def _set(self, cache: diskcache.Cache, key: str, body: bytes, etag: str, at: float) -> None:
        if len(body) > self.max_value_size:
            cache.delete(self._key(key))
        else:
            cache.set(self._key(key), _frame(body, etag, at), tag=None)
            self._stored += len(body) + 512  # the row's own overhead, roughly

    def clear(self) -> None:
        """Drop this namespace's entries only; other organizations' stay."""
        self._fills.discard_all()

        def apply(cache: diskcache.Cache) -> None:
            prefix = self.namespace + "/"
            for name in list(cache.iterkeys()):
                if isinstance(name, str) and name.startswith(prefix):
                    self._invalidate_name(cache, name[len(prefix) :])

        self._guarded(apply, "*", write=True)

    def _token(self, cache: diskcache.Cache, key: str) -> int:
        """The key's generation: a random token that every write replaces. A token, not a
        counter: if eviction drops the row, the next read makes a new token, so a fill
        taken before can never match again (a counter would restart at 0 and could)."""
        name = self._generation_key(key)
        value = cache.get(name)
        if not isinstance(value, int):
            cache.add(name, secrets.randbits(62))  # a racing reader's token wins: fine
            value = cache.get(name)
        return value if isinstance(value, int) else -1

    def _bump(self, cache: diskcache.Cache, key: str) -> None:
        cache.set(self._generation_key(key), secrets.randbits(62))

    def _invalidate_name(self, cache: diskcache.Cache, key: str) -> None:
        with cache.transact():
            self._bump(cache, key)
            cache.delete(self._key(key))

    def close(self) -> None:
        self._fills.close()  # lands what is queued first
        with self._lock:
            self._close_quietly()

    # -- damage --------------------------------------------------------------------------

    def _guarded(self, action: Any, key: str, write: bool = False) -> Any:
        """Run `action(cache)`; storage damage rebuilds the cache and reads as a miss."""
        with self._lock:
            try:
                cache = self._open(check_folder=write)
                result = action(cache)
                if self._stored >= max(self.size_limit // 64, 64 * 1024):
                    # After the action's transaction has committed: inside it, freed
                    # pages do not lower the volume yet and cull() would empty the cache.
                    self._stored = 0
                    cache.cull()
                return result
            except _UnsafeEntry:
                log.warning("Dropped an unsafe (pickled) cache entry for '%s'", key)
                with contextlib.suppress(*_DAMAGE, _UnsafeEntry):
                    self._open().delete(self._key(key))
                return None
            except diskcache.Timeout:
                return None  # another process holds the database: a miss, not damage
            except _DAMAGE as exc:
                if isinstance(exc, FileNotFoundError) and not write:
                    return None  # a value file removed under us: a miss
                self._rebuild(exc)
                return None

    def _rebuild(self, exc: BaseException) -> None:
        """The cache is unusable: remove the files diskcache made and start empty."""
        log.warning("Node cache at %s is damaged (%s); rebuilding it", self.directory, exc)
        self._close_quietly()
        _remove_diskcache_files(self.directory)
        try:
            self._open()
        except _DAMAGE as again:
            log.warning(
                "Node cache at %s is unusable (%s); reads go to the bucket", self.directory, again
            )
            self._cache = None

    def _close_quietly(self) -> None:
        if self._cache is not None:
            with contextlib.suppress(*_DAMAGE):
                self._cache.close()
            self._cache = None


def _remove_diskcache_files(folder: Path) -> None:
    """Delete the database and value files diskcache creates, and nothing else."""
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            path = folder / name
            if _DISKCACHE_FILES.match(name):
                with contextlib.suppress(OSError):
                    path.unlink()
            elif _VALUE_FOLDER.match(name) and path.is_dir():
                _remove_value_files(path)


def _remove_value_files(folder: Path) -> None:
    for root, folders, files in os.walk(folder, topdown=False):
        for name in files:
            if name.endswith(".val"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(root, name))
        for name in folders:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(root, name))  # only if empty
    with contextlib.suppress(OSError):
        folder.rmdir()
