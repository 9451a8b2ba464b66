"""The node-local read cache, on diskcache.

Entries are raw bytes framed with the object's ETag, the time they were last validated
and a BLAKE2b digest of the body: a damaged entry fails the digest and reads as a miss.
The `Disk` below refuses to pickle or unpickle anything (diskcache's default pickling is a
code-execution risk for whoever can write the cache folder, CVE-2025-69872). Any error
from the cache (a truncated database, a folder deleted under us) is logged, the cache is
rebuilt, and the caller sees a miss: the cache can make reads faster, never wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import sqlite3
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache

__all__ = ["CacheEntry", "NodeCache", "namespace_of", "private_directory"]

log = logging.getLogger("objectstore_s3")

_MAGIC = b"OSC1"
_HEADER = struct.Struct(">4sdB16s")  # magic, validated_at, etag length, digest
_CACHE_ERRORS = (sqlite3.Error, OSError, ValueError, TypeError, struct.error, diskcache.Timeout)


class _UnsafeEntry(ValueError):
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
        if not read and not isinstance(value, bytes):
            raise TypeError("cache values are bytes")
        return super().store(value, read, key)

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
        if mode == diskcache.core.MODE_PICKLE:
            raise _UnsafeEntry("refusing to unpickle a cache value")
        return super().fetch(mode, filename, value, read)


def private_directory(path: Path) -> None:
    """Create `path` and any missing parents owner-only (0700); tighten `path` itself."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
    os.chmod(path, 0o700)


@dataclass(frozen=True)
class CacheEntry:
    body: bytes
    etag: str
    validated_at: float


def namespace_of(*parts: str) -> str:
    """A short stable name for (endpoint, bucket, prefix, organization)."""
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=10).hexdigest()


def _frame(body: bytes, etag: str, validated_at: float) -> bytes:
    etag_bytes = etag.encode("ascii", "replace")[:255]
    digest = hashlib.blake2b(body, digest_size=16).digest()
    return _HEADER.pack(_MAGIC, validated_at, len(etag_bytes), digest) + etag_bytes + body


def _unframe(blob: bytes) -> CacheEntry | None:
    if len(blob) < _HEADER.size:
        return None
    magic, validated_at, etag_len, digest = _HEADER.unpack_from(blob)
    if magic != _MAGIC:
        return None
    start = _HEADER.size + etag_len
    body = blob[start:]
    if hashlib.blake2b(body, digest_size=16).digest() != digest:
        return None
    return CacheEntry(body, blob[_HEADER.size : start].decode("ascii"), validated_at)


class NodeCache:
    """One organization's view of the node's cache folder (shared by every store on the node)."""

    def __init__(self, directory: Path, namespace: str, size_limit: int) -> None:
        self.directory = directory
        self.namespace = namespace
        self.size_limit = size_limit
        # One value may take at most a quarter of the cache, so it cannot evict the rest.
        self.max_value_size = size_limit // 4
        self._folder = str(directory)
        self._lock = threading.Lock()
        self._cache: diskcache.Cache | None = None

    def _open(self, check_folder: bool = False) -> diskcache.Cache:
        # Reads skip the folder check (a stat per read): a deleted folder shows up as a
        # failed read of a value file, or is noticed by the next write.
        if self._cache is None or (check_folder and not os.path.isdir(self._folder)):
            self._close_quietly()
            private_directory(self.directory)
            self._cache = diskcache.Cache(
                str(self.directory),
                disk=RawDisk,
                size_limit=self.size_limit,
                tag_index=True,
                eviction_policy="least-recently-stored",
            )
        return self._cache

    def _key(self, key: str) -> str:
        return f"{self.namespace}/{key}"

    def get(self, key: str) -> CacheEntry | None:
        """The cached entry, or None (also for a damaged or unreadable entry)."""
        with self._lock:
            try:
                blob = self._open().get(self._key(key), read=False)
            except _UnsafeEntry:
                log.warning("Dropped an unsafe (pickled) cache entry for '%s'", key)
                self._discard(key)
                return None
            except _CACHE_ERRORS as exc:
                self._rebuild(exc)
                return None
        if blob is None:
            return None
        entry = _unframe(blob) if isinstance(blob, bytes) else None
        if entry is None:
            log.warning("Dropped a damaged cache entry for '%s'", key)
            with self._lock:
                self._discard(key)
        return entry

    def contains(self, key: str) -> bool:
        """Whether the key has an entry, without reading or checking its value."""
        with self._lock:
            try:
                return self._key(key) in self._open()
            except _CACHE_ERRORS as exc:
                self._rebuild(exc)
                return False

    def put(self, key: str, body: bytes, etag: str, validated_at: float | None = None) -> None:
        """Cache a value the bucket accepted (or served). Oversized values are skipped."""
        with self._lock:
            if len(body) > self.max_value_size:
                self._discard(key)
                return
            blob = _frame(body, etag, time.time() if validated_at is None else validated_at)
            try:
                self._open(check_folder=True).set(self._key(key), blob, tag=self.namespace)
            except _CACHE_ERRORS as exc:
                self._rebuild(exc)

    def delete(self, key: str) -> None:
        with self._lock:
            self._discard(key)

    def clear(self) -> None:
        """Drop this namespace's entries only; other organizations' stay."""
        with self._lock:
            try:
                self._open().evict(self.namespace)
            except _CACHE_ERRORS as exc:
                self._rebuild(exc)

    def close(self) -> None:
        with self._lock:
            self._close_quietly()

    def _discard(self, key: str) -> None:
        try:
            self._open().delete(self._key(key))
        except _CACHE_ERRORS as exc:
            self._rebuild(exc)

    def _rebuild(self, exc: BaseException) -> None:
        """The cache is unusable: move it aside and start empty (the bucket is the truth)."""
        log.warning("Node cache at %s is damaged (%s); rebuilding it", self.directory, exc)
        self._close_quietly()
        if self.directory.exists():
            shutil.rmtree(self.directory, ignore_errors=True)
        try:
            self._open()
        except _CACHE_ERRORS as again:
            log.warning(
                "Node cache at %s is unusable (%s); reads go to the bucket", self.directory, again
            )
            self._cache = None

    def _close_quietly(self) -> None:
        if self._cache is not None:
            with contextlib.suppress(*_CACHE_ERRORS):
                self._cache.close()
            self._cache = None
