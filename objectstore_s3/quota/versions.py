"""Versioned buckets in the quota: the bucket's versioning, and usage from every version.
See docs/quotas.md, "Versions"; retention (pruning) is in retention.py.

On a bucket with versioning enabled an overwrite keeps the old version (noncurrent) and a
delete leaves a delete marker, so stored bytes are the sum over every version and the file
count is the number of keys whose latest version is not a delete marker. The write path
asks `Versioning.state` (probed once, then again at each recount and lease renewal) how to
count a write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from itertools import groupby

from objectstore_s3.errors import (
    ObjectStoreError,
    StoragePermissionError,
    StorageUnavailableError,
    UnsupportedOperationError,
)
from objectstore_s3.transport.base import Backend, VersionInfo

from .spend import Usage

__all__ = [
    "REPROBE_SECONDS",
    "UNKNOWN_COUNTS_AS",
    "Replaced",
    "Versioning",
    "by_key",
    "key_versions",
    "versioned_usage",
]

log = logging.getLogger("objectstore_s3")

# A store asks the bucket's versioning again when it renews its lease, at most this often,
# and at every recount: a switch made behind running stores is noticed within this time.
REPROBE_SECONDS = 30.0
# Versions of a record its updates replaced and could not delete yet, retried at the next
# update (more are left to the sweep at the next recount).
_LEFT_AT_MOST = 16
# How a write is counted while the bucket's versioning is not known (see Versioning.state).
UNKNOWN_COUNTS_AS = "suspended"


class Versioning:
    """The bucket's versioning ("enabled", "suspended" or "off"), as this store last saw it.

    Probed on first use; `refresh()` asks again (each recount, and `stale` ones at a lease
    renewal). A change is logged: writes counted under the old state may be off (the
    ledger is marked for a recount by the caller)."""

    def __init__(self, backend: Backend, *, every: float = REPROBE_SECONDS) -> None:
        self._backend = backend
        self._every = every
        self._state: str | None = None
        self._asked = -float("inf")
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        """The state writes are counted by. Asked on first use; a bucket that does not
        answer (unreachable, failing) is not known yet, and asked again next time: the
        write that asked then meets the same failure and reports it under its own key.
        Meanwhile it counts as "suspended", the upper bound of every state (an overwrite
        +size and a delete -1 file, 0 bytes, both `at_most`: drift, so the next recount
        sets the exact figure), and prunes nothing: a versioned bucket is never counted
        as unversioned by mistake (an under-count)."""
        known = self._state
        if known is not None:
            return known
        try:
            return self.refresh()
        except StorageUnavailableError as exc:
            log.debug("The bucket's versioning is not known yet (%s)", exc)
            return UNKNOWN_COUNTS_AS

    @property
    def known(self) -> str | None:
        """The state last probed, without asking (None: never asked)."""
        return self._state

    @property
    def stale(self) -> bool:
        return time.monotonic() - self._asked >= self._every

    def refresh(self) -> str:
        """Ask the bucket now; the new state. A change is logged."""
        try:
            found = self._backend.versioning()
        except UnsupportedOperationError:
            found = "off"  # a server without versioning
        except StoragePermissionError as exc:
            # The credentials may not read the bucket's configuration: counted as
            # unversioned (docs/quotas.md, "Versions": grant s3:GetBucketVersioning).
            if self._state is None:
                log.warning(
                    "Cannot read the bucket's versioning (%s): usage is counted as on a "
                    "bucket without versions; grant s3:GetBucketVersioning if it is versioned",
                    exc,
                )
            found = "off"
        with self._lock:
            before, self._state = self._state, found
            self._asked = time.monotonic()
        if before is not None and before != found:
            log.warning(
                "The bucket's versioning changed from %s to %s behind this store: usage "
                "is recounted from a listing of every version",
                before,
                found,
            )
        return found


class Replaced:
    """The versions of one of the store's own records (the usage ledger) that its updates
    replaced, deleted for good. On a bucket that keeps versions every conditional update
    of the ledger would leave one more noncurrent version, which nobody reads or counts
    (the records scope is outside the organization's keys) and which would pile up.

    Safe, and so best effort: a replaced version is no longer current (its update's
    If-Match held on it), and only the current ledger is ever read or compared, so
    deleting it changes nothing a store relies on; a noncurrent version never becomes
    current again, since only noncurrent ones are deleted. A failure is logged at debug
    and retried by the next update; whatever is still left (a lost answer gives no
    version id) goes at the next recount's `sweep`."""

    def __init__(self, records: Backend, key: str) -> None:
        self._records = records
        self._key = key
        self._left: list[str] = []
        self._allowed = True

    def written(self, before: str | None, after: str | None) -> None:
        """An update replaced version `before` (as read) by version `after` (its PUT's
        answer): delete `before`. Only when both are known and differ, so the version
        deleted is never the current one (on a bucket without versions neither is known;
        suspended, "null" replaced by "null" is the same version)."""
        if before is not None and after is not None and before != after:
            self._left = [*self._left, before][-_LEFT_AT_MOST:]
        self._drop()

    def sweep(self) -> None:
        """Delete every noncurrent version (and delete marker) of the record: those an
        update could not delete, and those left before this store kept them in check."""
        try:
            versions = key_versions(self._records, self._key)
        except ObjectStoreError as exc:
            log.debug("Could not list the versions of '%s' (%s)", self._key, exc)
            return
        self._left = [version.version_id for version in versions if not version.latest]
        self._drop()

    def _drop(self) -> None:
        """Delete what is left, until the first failure (retried next time)."""
        while self._left and self._allowed:
            try:
                self._records.delete_version(self._key, self._left[0])
            except StoragePermissionError as exc:
                self._allowed = False  # not granted: noncurrent versions stay
                log.warning(
                    "Cannot delete old versions of the store's '%s' (%s): grant "
                    "s3:DeleteObjectVersion, or a lifecycle rule removes them",
                    self._key,
                    exc,
                )
                return
            except ObjectStoreError as exc:
                log.debug("Could not delete an old version of '%s' (%s)", self._key, exc)
                return
            self._left = self._left[1:]


def versioned_usage(versions: Iterable[VersionInfo]) -> Usage:
    """Bytes of every version (delete markers hold none) and the keys whose latest version
    is not a delete marker: what a versioned bucket stores, and its file count."""
    total = files = 0
    for version in versions:
        if not version.deleted:
            total += version.size
            files += version.latest
    return Usage(total, files)


def key_versions(backend: Backend, key: str) -> list[VersionInfo]:
    """The versions of exactly `key`, newest first (a listing of the prefix `key` also
    holds `key/...` and longer names, which sort after it: one page at most is read)."""
    found: list[VersionInfo] = []
    for version in backend.list_versions(key):
        if version.key != key:
            break
        found.append(version)
    return found


def by_key(versions: Iterable[VersionInfo]) -> Iterator[list[VersionInfo]]:
    """Versions grouped by key (a listing is in key order)."""
    for _, group in groupby(versions, key=lambda v: v.key):
        yield list(group)
