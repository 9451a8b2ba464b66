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
    StoragePermissionError,
    UnsupportedOperationError,
)
from objectstore_s3.transport.base import Backend, VersionInfo

from .spend import Usage

__all__ = ["REPROBE_SECONDS", "Versioning", "by_key", "key_versions", "versioned_usage"]

log = logging.getLogger("objectstore_s3")

# A store asks the bucket's versioning again when it renews its lease, at most this often,
# and at every recount: a switch made behind running stores is noticed within this time.
REPROBE_SECONDS = 30.0


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
        known = self._state
        return known if known is not None else self.refresh()

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
