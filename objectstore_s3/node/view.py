"""The node-local view of a key: the one place that knows what this node holds for it.

Newest first: a local file written since its last sync; pending write-behind work (a put
or a delete); a key registered by `get_file_path` with nothing written yet; a fresh
cache entry; else the bucket. Every operation asks here once, so a read, a `contains_key`,
a delete's existence check and a writer's precondition all see the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from objectstore_s3.errors import KeyNotFoundError
from objectstore_s3.local.cache import CacheEntry, CacheMeta, NodeCache
from objectstore_s3.local.files import LocalFiles
from objectstore_s3.local.filestate import FileStates
from objectstore_s3.local.journal import Journal
from objectstore_s3.local.segments import PendingEntry
from objectstore_s3.transport.base import Backend, Base, ObjectData, ObjectInfo, Progress

from .versions import VersionReads

__all__ = ["KeyState", "Listed", "NodeView"]

Kind = Literal["local", "pending_put", "pending_delete", "registered", "cached", "unknown"]


@dataclass(frozen=True)
class KeyState:
    kind: Kind
    entry: PendingEntry | None = None
    cached: CacheMeta | None = None  # set for "cached", and for "unknown" with a stale entry
    body: CacheEntry | None = None  # the cached value, when the state was asked with_body


@dataclass(frozen=True)
class Listed:
    """A key in a listing: size, ETag and time (ETag and time None while pending)."""

    key: str
    size: int
    etag: str | None
    last_modified: float | None


class NodeView:
    """What this node knows of each key, and the reads that follow from it."""

    def __init__(
        self,
        journal: Journal,
        states: FileStates,
        files: LocalFiles,
        cache: NodeCache,
        backend: Backend,
        *,
        revalidate: bool,
        max_age: float | None,
        is_key: Callable[[str], bool],
    ) -> None:
        self._journal = journal
        self._states = states
        self._files = files
        self._cache = cache
        self._backend = backend
        self._revalidate = revalidate
        self._max_age = max_age
        self._is_key = is_key
        self.versions = VersionReads(cache, files, backend)  # earlier versions, by id
        self.hits = self.misses = 0  # reads the cache answered, and those it could not

    def state(self, key: str, *, with_body: bool = False) -> KeyState:
        registered = self._states.is_registered(key)
        if registered and self._states.is_changed(key):
            return KeyState("local")
        if registered and self._states.state(key) is None and not self._states.has_content(key):
            # Handed out for a key that did not exist (a delete unregisters first, so this
            # is newer than any pending delete).
            return KeyState("registered")
        entry = self._journal.get(key)
        if entry is not None:
            return KeyState("pending_put" if entry.op == "put" else "pending_delete", entry)
        # A read takes the whole entry in one lookup; others read only its header.
        body = self._cache.get(key) if with_body else None
        meta = body.meta if body is not None else None if with_body else self._cache.meta(key)
        if meta is not None and self._fresh(meta):
            return KeyState("cached", cached=meta, body=body)
        return KeyState("unknown", cached=meta, body=body)

    def _fresh(self, meta: CacheMeta) -> bool:
        if self._max_age is not None:
            return time.time() - meta.validated_at <= self._max_age
        return not self._revalidate

    # -- reads ---------------------------------------------------------------------------

    def read(self, key: str) -> bytes | None:
        """The key's value as this node sees it; None for a registered, empty key."""
        state = self.state(key, with_body=True)
        if state.kind == "local":
            return self._states.path_for(key).read_bytes()
        if state.kind == "pending_delete":
            raise KeyNotFoundError(key)
        if state.kind == "pending_put":
            assert state.entry is not None
            data = self._journal.data(state.entry)
            if data is not None:
                return data
            state = KeyState("unknown")  # uploaded meanwhile: the bucket has it
        if state.kind == "registered":
            return None
        if state.kind == "cached" and state.body is not None:
            self.hits += 1  # a counter per process: diskcache's stats would write per read
            return state.body.body
        self.misses += 1
        return self._fetch(key, state.body)

    def local_work(self) -> tuple[list[PendingEntry], list[str]]:
        """This node's pending write-behind entries (oldest first), and the keys whose
        local file has changes not uploaded (no request)."""
        return self._journal.entries(), self._states.changed_keys()

    @property
    def cache(self) -> NodeCache:
        return self._cache

    def _fetch(self, key: str, entry: CacheEntry | None) -> bytes | None:
        """GET the key (conditional on a stale cached copy) and fill the cache."""
        data = self._get(key, entry)
        if data is not None:
            return data.body
        if self._states.is_registered(key):
            return None  # handed out by get_file_path, nothing written yet
        raise KeyNotFoundError(key)

    def read_version(self, key: str, version_id: str) -> bytes:
        """One version's value (immutable: cached by id, see versions.py)."""
        return self.versions.read(key, version_id)

    def current(self, key: str) -> ObjectData | None:
        """The bucket's object now, whatever the cache's freshness says (a GET, answered
        304 when the cached copy is current); None if the key does not exist."""
        return self._get(key, self._cache.get(key))

    def _get(self, key: str, entry: CacheEntry | None) -> ObjectData | None:
        """GET conditional on `entry`, the cache filled or touched; None: no object."""
        generation = self._cache.generation(key)
        try:
            data = self._backend.get(key, if_none_match=entry.etag if entry else None)
        except KeyNotFoundError:
            if entry is not None:
                self._cache.invalidate(key)
            return None
        if data is None:  # 304: the cached copy is current
            assert entry is not None
            self._cache.touch(key, entry, generation)
            return ObjectData(entry.body, ObjectInfo(key, len(entry.body), entry.etag))
        self._cache.fill(key, data.body, data.info.etag, generation, had_entry=entry is not None)
        return data

    def exists(self, key: str) -> bool:
        state = self.state(key)
        if state.kind in ("local", "pending_put", "registered", "cached"):
            return True
        if state.kind == "pending_delete":
            return False
        if self._states.is_registered(key):
            return True
        info = self._backend.head(key)
        if info is None and state.cached is not None:
            self._cache.invalidate(key)
        return info is not None

    def base(self, key: str) -> Base:
        """What a write of `key` expects to replace, as far as this node knows (no request):
        the pending work, the cache, or the local file's last sync."""
        entry = self._journal.get(key)
        if entry is not None:  # the bucket is still as the pending work found it
            return entry.base
        meta = self._cache.meta(key)
        if meta is not None:
            return Base(meta.etag, meta.size, True)
        state = self._states.state(key) if self._states.is_registered(key) else None
        if state is not None and state.etag is not None:
            return Base(state.etag, state.size, True)
        return Base()

    def presence(self, key: str) -> tuple[bool, Base]:
        """Whether the key exists for this node, and what the bucket holds for it (asking
        the bucket when this node knows nothing fresh): a delete's starting point."""
        state = self.state(key)
        registered = self._states.is_registered(key)
        if state.kind in ("pending_put", "pending_delete"):
            assert state.entry is not None
            return state.kind == "pending_put" or registered, state.entry.base
        if state.kind == "cached" and state.cached is not None:
            return True, Base(state.cached.etag, state.cached.size, True)
        info = self._backend.head(key)
        if info is None:
            if state.cached is not None:
                self._cache.invalidate(key)
            return registered, Base.absent()
        return True, Base(info.etag, info.size, True)

    def materialize(self, key: str, progress: Progress | None = None) -> Path:
        """The key's local file, holding what the key holds on this node: its pending
        value, the bucket's object, or nothing yet (a key that does not exist is
        registered). The caller holds the key's write lock and its node-wide file lock."""
        files, state = self._files, self.state(key)
        if state.kind == "registered":
            return files.prepare(key)
        if state.kind == "pending_put":
            assert state.entry is not None
            data = self._journal.data(state.entry)
            if data is not None:
                return files.write(key, data, None)
        if state.kind == "pending_delete":
            return files.start_empty(key)
        info = self._backend.head(key)
        if info is None:
            # The user's own work for a key the bucket does not have stays as it is.
            return files.prepare(key) if state.kind == "local" else files.start_empty(key)
        path = files.bring_in(
            key, info, lambda target: self._backend.download(key, target, progress)
        )
        self._states.register(key, self._states.state(key))
        cached = self._cache.meta(key)
        if cached is not None and cached.etag != info.etag:
            self._cache.invalidate(key)  # the file shows a newer object than the cache
        return path

    def download(self, key: str, target: Path, progress: Progress | None = None) -> None:
        """Stream the key's value into a local file: this node's own newer value if it
        has one, else the bucket's object (ranged parts, bounded memory)."""
        if self.state(key).kind not in ("cached", "unknown"):
            target.write_bytes(self.read(key) or b"")
            return
        self._backend.download(key, target, progress)

    # -- listings ------------------------------------------------------------------------

    def listing(self, prefix: str = "") -> list[Listed]:
        """Every key under `prefix`, sorted: the bucket's, with this node's pending work
        and registered local files laid over it."""
        found = {
            info.key: Listed(info.key, info.size, info.etag, info.last_modified)
            for info in self._backend.list(prefix)
            if self._is_key(info.key)
        }
        return self._overlay(found, lambda key: key.startswith(prefix))

    def listing_page(self, prefix: str, start_after: str, limit: int) -> list[Listed]:
        """The first `limit` keys under `prefix` after `start_after`, as `listing` shows
        them: the bucket's listing is read lazily and stops once the page is full (S3's
        pagination too), this node's pending work and local files laid over that range."""
        found: dict[str, Listed] = {}
        last, ended = start_after, True
        gone = {entry.key for entry in self._journal.entries() if entry.op == "delete"}
        for info in self._backend.list(prefix):
            if info.key <= start_after or not self._is_key(info.key) or info.key in gone:
                continue  # a pending delete takes no room: a short page is the last
            if len(found) >= limit:
                ended = False
                break
            last = info.key
            found[info.key] = Listed(info.key, info.size, info.etag, info.last_modified)

        def in_page(key: str) -> bool:
            return key.startswith(prefix) and key > start_after and (ended or key <= last)

        return self._overlay(found, in_page)[:limit]

    def _overlay(self, found: dict[str, Listed], within: Callable[[str], bool]) -> list[Listed]:
        """`found` (the bucket's keys) with this node's registered local files and pending
        work on the keys `within` the listing laid over it, sorted."""
        for key in filter(within, self._states.registered_keys()):
            found.setdefault(key, Listed(key, 0, None, None))
        for entry in self._journal.entries():
            if not within(entry.key):
                continue
            if entry.op == "delete":
                found.pop(entry.key, None)
            else:
                found[entry.key] = Listed(entry.key, entry.length, None, None)
        return [found[key] for key in sorted(found)]

    def info(self, key: str) -> Listed | None:
        """One key's size, ETag and time, as this node sees it (None: absent)."""
        state = self.state(key)
        if state.kind == "pending_delete":
            return None
        if state.kind == "pending_put":
            assert state.entry is not None
            return Listed(key, state.entry.length, None, None)
        if state.kind == "local":
            return Listed(key, self._states.path_for(key).stat().st_size, None, None)
        found: ObjectInfo | None = self._backend.head(key)
        if found is None:
            return Listed(key, 0, None, None) if self._states.is_registered(key) else None
        return Listed(key, found.size, found.etag, found.last_modified)
