"""Whole objects and their metadata, the CLI's operations: `stat`, `list_objects`,
`download_file` and `upload_file` stream a key's value to or from a local file (ranged
parts and multipart, bounded memory) and report size, ETag and time; `presign_url`
gives a URL that downloads it without credentials. Like the typed
values, each public method validates and then makes one call into the node's parts,
which `ObjectStore` provides.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from .errors import KeyNotFoundError
from .lean import LedgerHealth, NodeStatus, ObjectStat
from .node.node import Parts
from .node.view import Listed
from .quota.ledger import Ledger
from .values import TypedValues, expectation

__all__ = ["MAX_PRESIGN_SECONDS", "WholeObjects", "health_of", "stat_of"]

Progress = Callable[[int], None]
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # S3's limit for a SigV4 presigned URL


class WholeObjects(TypedValues):
    """Streams of whole objects to and from local files, and their metadata."""

    @property
    @abstractmethod
    def _parts(self) -> Parts:
        """The node's parts that talk to the bucket (built on first use)."""

    @abstractmethod
    def _require(self, permission: str) -> None:
        """StoragePermissionError unless the settings grant `permission`."""

    @abstractmethod
    def _guarded(self, write: Callable[[], object], key: str) -> bool:
        """Run a write; a quota refusal is raised or reported per the mode."""

    def stat(self, key: str) -> ObjectStat:
        """Size, ETag and last-modified time of a key; KeyNotFoundError if absent."""
        name = self._key(key)
        self._require("read")
        found = self._parts.view.info(name)
        if found is None:
            raise KeyNotFoundError(name)
        return stat_of(found)

    def list_objects(self, prefix: str = "") -> list[ObjectStat]:
        """Every key starting with `prefix`, sorted, with its size, ETag and time."""
        self._require("read")
        return [stat_of(item) for item in self._parts.view.listing(prefix)]

    def list_page(
        self, prefix: str = "", *, start_after: str | None = None, limit: int = 200
    ) -> list[ObjectStat]:
        """At most `limit` keys starting with `prefix` and sorting after `start_after`, in
        key order: a folder one page at a time (the next page starts after the last key
        of this one; an empty page is the end). The bucket's listing stops early."""
        self._require("read")
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        found = self._parts.view.listing_page(prefix, start_after or "", limit)
        return [stat_of(item) for item in found]

    def download_file(self, key: str, path: str | Path, progress: Progress | None = None) -> None:
        """Stream a key's value into a local file (ranged parts, bounded memory)."""
        name = self._key(key)
        self._require("read")
        self._parts.view.download(name, Path(path), progress)

    def presign_url(self, key: str, expires: float = 3600.0) -> str:
        """A URL that downloads the key's value without credentials for `expires` seconds
        (at most 7 days, S3's limit). Signed here, no request: the key is not checked.
        UnsupportedOperationError where the backend has no URLs (the in-memory one)."""
        name = self._key(key)
        self._require("read")
        if not 1 <= expires <= MAX_PRESIGN_SECONDS:
            raise ValueError(
                f"expires must be 1 s to 7 days ({MAX_PRESIGN_SECONDS} s), not {expires}"
            )
        return self._parts.objects.presign(name, expires)

    def upload_file(
        self,
        key: str,
        path: str | Path,
        progress: Progress | None = None,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> bool:
        """Store a local file's content under `key` (multipart, bounded memory, quota);
        `if_match` / `if_absent` as for `save`."""
        name, expect = self._key(key), expectation(if_match, if_absent)
        self._require("write")
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"No file to upload for key '{name}': {source} does not exist")
        writer = self._parts.writer
        return self._guarded(
            lambda: writer.put_file(name, source, progress=progress, expect=expect), name
        )

    def ledger_health(self) -> LedgerHealth | None:
        """The organization's usage ledger: committed usage, the live stores' leases, the
        maybes and their horizon, drift and the last recount (one GET; None: no ledger yet,
        nothing was ever saved). Read-only: `reconcile_usage` recounts it."""
        self._require("read")
        ledger = self._parts.quota.ledger()
        return None if ledger is None else health_of(ledger, time.time())

    def node_status(self) -> NodeStatus:
        """This node's cache, pending write-behind work and local files with unsaved
        changes, from its local state (no request to the bucket)."""
        self._require("read")
        view = self._parts.view
        entries, unsaved = view.local_work()
        cache_bytes, cache_entries = view.cache.usage()
        deletes = sum(entry.op == "delete" for entry in entries)
        return NodeStatus(
            cache_bytes=cache_bytes,
            cache_entries=cache_entries,
            cache_hits=view.hits,
            cache_misses=view.misses,
            pending_writes=len(entries) - deletes,
            pending_deletes=deletes,
            pending_bytes=sum(entry.length for entry in entries if entry.op == "put"),
            unsaved=tuple(sorted(unsaved)),
        )


def health_of(ledger: Ledger, now: float) -> LedgerHealth:
    """The public reading of a ledger; leases past their expiry at `now` are not live
    (their room is reclaimed at the ledger's next update)."""
    reserved_bytes, reserved_files = ledger.reserved()
    horizon = max((until for _, _, until in ledger.maybes), default=None)
    return LedgerHealth(
        files=ledger.files,
        bytes=ledger.bytes,
        leases=sum(lease.expires > now for lease in ledger.leases.values()),
        holds=len(ledger.holds),
        reserved_files=reserved_files,
        reserved_bytes=reserved_bytes,
        maybe_writes=len(ledger.maybes),
        maybe_files=sum(files for files, _, _ in ledger.maybes),
        maybe_bytes=sum(size for _, size, _ in ledger.maybes),
        maybe_until=_moment(horizon),
        drift=ledger.drift,
        last_recount=_moment(ledger.rebased_at or None),
    )


def _moment(at: float | None) -> datetime | None:
    return None if at is None else datetime.fromtimestamp(at, UTC)


def stat_of(item: Listed) -> ObjectStat:
    """The public stat of a listed key."""
    when = None if item.last_modified is None else datetime.fromtimestamp(item.last_modified, UTC)
    return ObjectStat(item.key, item.size, item.etag, when)
