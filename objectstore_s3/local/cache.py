"""The node-local read cache, on diskcache.

An entry is the raw body behind a small header: the object's ETag and size, when it was
last validated, and a CRC-32 of the body (a damaged entry fails it and reads as a miss;
CRC-32 costs a fifth of a cryptographic digest, and detecting accidental damage is all it
is for: the folder is the user's own). `meta()` reads only the header, so a writer can
learn a key's ETag and size without reading the value. The database's `Disk` refuses to
pickle or unpickle anything (diskcache's default pickling is a code-execution risk for
whoever can write the folder, CVE-2025-69872).

Every process of the node shares one database (cachedb.py), so fills are ordered against
writes across processes: each key has a generation that every write replaces, a read
takes it before its request and fills only if it is unchanged (a read racing a delete
cannot resurrect the value). A write whose database update fails (a busy lock past
`lock_timeout`, a full disk) marks the key stale before it returns, and every hit checks
that with one `lstat` (cachemarks.py); a damaged database is replaced only after every
process was told to leave it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import diskcache

from .cachedb import NEVER, SharedDatabase, Slot, bump
from .cachefill import Fill, PendingFills

__all__ = ["CacheEntry", "CacheMeta", "NodeCache", "namespace_of", "version_entry"]

log = logging.getLogger("objectstore_s3")

_PENDING_FILL_BYTES = 32 * 1024 * 1024  # fills behind reads held in memory at most
_SLOTS_KEPT = 4096
_MAGIC = b"OSC2"
_HEADER = struct.Struct(">4sdQIB")  # magic, validated_at, size, crc32, etag length


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


def version_entry(key: str, version_id: str) -> str:
    """The cache's name for one version of a key: '@' is in no key, so it can never be a
    user key's name, and the key's own entry is never touched by a version's."""
    return f"{key}@{version_id}"


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
    """One organization's view of the node's cache folder (shared by every store on it).
    `lock_timeout`: how long an update waits for the database lock before it marks the
    key stale instead (reads never wait for it)."""

    def __init__(
        self, directory: Path, namespace: str, size_limit: int, *, lock_timeout: float = 5.0
    ) -> None:
        self.directory = directory
        self.namespace = namespace
        self.size_limit = size_limit
        # One value may take at most a quarter of the cache, so it cannot evict the rest.
        self.max_value_size = size_limit // 4
        self._db = SharedDatabase(directory, size_limit, lock_timeout)
        self._fills = PendingFills(self._land, max_bytes=_PENDING_FILL_BYTES)
        self._slots: dict[str, Slot] = {}

    def _slot(self, key: str) -> Slot:
        """The key's names in the database, kept for the keys read lately (a hit hashes
        none: its marker's name is the one thing it needs beyond the row)."""
        slot = self._slots.get(key)
        if slot is None:
            if len(self._slots) >= _SLOTS_KEPT:
                self._slots.clear()
            slot = self._slots[key] = Slot(self.namespace, key)
        return slot

    # -- reading -----------------------------------------------------------------------

    def get(self, key: str) -> CacheEntry | None:
        """The cached entry, or None (also for a damaged or unreadable entry)."""
        pending = self._pending(key)
        if pending is not None:
            return CacheEntry(pending.body, pending.etag, pending.validated_at)
        blob = self._lookup(key, read=False)
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
        value = self._lookup(key, read=True)
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

    def usage(self) -> tuple[int, int]:
        """(bytes, entries) of the node's cache database, every namespace's (diskcache keeps
        both as counters: no scan); (0, 0) if it cannot be read."""
        found = self._db.read(lambda cache: (int(cache.volume()), len(cache)), self._slot(""))
        return found if isinstance(found, tuple) else (0, 0)

    def _lookup(self, key: str, read: bool) -> Any:
        """The key's raw entry (bytes, or a file for `read`); None unless usable."""
        slot = self._slot(key)

        def lookup(cache: diskcache.Cache) -> Any:
            value = cache.get(slot.entry, read=read)
            if value is None or self._db.usable(slot):
                return value
            if not isinstance(value, bytes):
                value.close()
            return None

        return self._db.read(lookup, slot)

    def _pending(self, key: str) -> Fill | None:
        """A fill not yet landed, if it still passes the check it will land with."""
        fill = self._fills.get(key)
        if fill is None or self.generation(key) != fill.generation:
            return None
        return fill

    def generation(self, key: str) -> int:
        """The key's write generation; a fill is accepted only if it is still this. A key
        marked stale has none until the marker goes with an update of the key: the read
        that finds it forgets the key itself when it can (as a write that caches nothing
        would), so the value it fetches is cached at once, not at the next read."""
        slot = self._slot(key)
        marked = False

        def token(cache: diskcache.Cache) -> int:
            nonlocal marked
            value = _token(cache, slot)
            marked = not self._db.usable(slot)
            return NEVER if marked else value

        value = self._db.read(token, slot)
        if marked:
            self._db.optional(slot, self._db.forget(slot), lambda: True)
            value = self._db.read(token, slot)
        return value if isinstance(value, int) else NEVER

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
        slot = self._slot(key)

        def change(cache: diskcache.Cache, stale: bool) -> None:
            if stale:
                self._db.forget(slot)(cache, stale)
            elif cache.get(slot.generation) == fill.generation:
                self._set(cache, slot, fill.body, fill.etag, fill.validated_at)

        # A queued fill lands only while still pending (a write or clear of this
        # process drops it), checked under the database's lock.
        self._db.optional(slot, change, lambda: not queued or self._fills.is_pending(key, fill))

    def settle(self) -> None:
        """Wait for the fills behind reads to land (tests; close does it too)."""
        self._fills.settle()

    def store(self, key: str, body: bytes, etag: str, validated_at: float | None = None) -> None:
        """Cache a value the bucket accepted (a write: bumps the generation). If the cache
        cannot take it, the key's entry is made unusable for every process instead."""
        at = time.time() if validated_at is None else validated_at
        self._fills.discard(key)
        slot = self._slot(key)

        def change(cache: diskcache.Cache, stale: bool) -> None:
            bump(cache, slot)
            if stale:  # a newer write may have failed meanwhile: this value could be older
                cache.delete(slot.entry)
            else:
                self._set(cache, slot, body, etag, at)

        self._db.write(slot, change)

    def invalidate(self, key: str) -> None:
        """Forget the key (a write or delete whose result is not cached)."""
        self._fills.discard(key)
        slot = self._slot(key)
        self._db.write(slot, self._db.forget(slot))

    def touch(self, key: str, entry: CacheEntry, generation: int) -> None:
        """Restart an entry's age after a revalidation (304), unless a write to the key
        happened since `generation` (the entry may be replaced by a newer value)."""
        slot = self._slot(key)

        def change(cache: diskcache.Cache, stale: bool) -> None:
            if stale:
                self._db.forget(slot)(cache, stale)
            elif cache.get(slot.generation) == generation:
                self._set(cache, slot, entry.body, entry.etag, time.time())

        self._db.optional(slot, change, lambda: True)

    def clear(self) -> None:
        """Drop this namespace's entries only; other organizations' stay."""
        self._fills.discard_all()
        prefix = self.namespace + "/"
        busy = False  # once the lock was busy for one key, the rest are marked at once
        for name in self._db.names(prefix) or []:
            slot = self._slot(name[len(prefix) :])
            busy = self._db.write(slot, self._db.forget(slot), busy=busy)

    def _set(self, cache: diskcache.Cache, slot: Slot, body: bytes, etag: str, at: float) -> None:
        if len(body) > self.max_value_size:
            cache.delete(slot.entry)
        else:
            cache.set(slot.entry, _frame(body, etag, at), tag=None)
            self._db.stored(len(body))

    def close(self) -> None:
        self._fills.close()  # lands what is queued first
        self._db.close()


def _token(cache: diskcache.Cache, slot: Slot) -> int:
    """The key's generation: a random token that every write replaces. A token, not a
    counter: if eviction drops the row, the next read makes a new token, so a fill taken
    before can never match again (a counter would restart at 0 and could)."""
    value = cache.get(slot.generation)
    if not isinstance(value, int):
        cache.add(slot.generation, secrets.randbits(62))  # a racing reader's token wins
        value = cache.get(slot.generation)
    return value if isinstance(value, int) else NEVER
