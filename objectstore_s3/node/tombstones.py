"""A record of recent deletes, so that pending work never recreates a key deleted after it
was accepted (a node killed with pending saves replays them later; SPEC, "Failure
behaviour").

A deleted key leaves nothing in S3 to compare a pending save with, so every delete the
store makes writes, after the DELETE succeeded, a small tombstone among the organization's
records: `deleted/<sha256 of the key>`, whose body names the key and the deleting store's
lease, and whose Last-Modified is the server's time of the delete (a bound from above).
Pending work that finds its key absent looks the tombstone up and gives way to a delete
written after its acceptance. Best effort: a tombstone that cannot be written is logged,
never fails the delete. Tombstones older than `HORIZON` are pruned by reconcile_usage().

Undecidable, and so applied (the user's save): a delete by another tool (no tombstone), a
process killed between its DELETE and the tombstone, and a pending entry older than the
horizon whose tombstone may have been pruned (logged as a warning).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

from objectstore_s3.errors import ObjectStoreError
from objectstore_s3.transport.base import Backend, ObjectInfo, content_etag

__all__ = ["HORIZON", "Tombstones"]

log = logging.getLogger("objectstore_s3")

HORIZON = 7 * 24 * 3600.0  # how long a delete is remembered (the replay horizon)
_PREFIX = "deleted/"
_PRUNE_PER_LOOK = 50  # tombstones past the horizon forgotten by one batch's listing


def _name(key: str) -> str:
    return _PREFIX + hashlib.sha256(key.encode()).hexdigest()


def _body(key: str, lease: str) -> bytes:
    return f"{key}\n{lease}".encode()


class Tombstones:
    """The organization's recent deletes, in its records scope (None: not kept)."""

    def __init__(self, records: Backend | None) -> None:
        self._records = records

    def write(self, key: str, lease: str) -> None:
        """Remember that `key` was just deleted by the store holding `lease`."""
        if self._records is None:
            return
        try:
            self._records.put(_name(key), _body(key, lease))
        except ObjectStoreError as exc:
            log.warning(
                "Deleted '%s' but could not record the delete (%s): a replay of older "
                "pending work elsewhere may recreate it",
                key,
                exc,
            )

    def recent(self, now: float | None = None) -> dict[str, ObjectInfo]:
        """Every tombstone, by name: one listing, for a batch of pending creates. With the
        server's `now`, a few tombstones past the horizon are forgotten on the way, so the
        listing stays about the size of the horizon's deletes without a reconcile."""
        if self._records is None:
            return {}
        found = {info.key: info for info in self._records.list(_PREFIX)}
        if now is not None:
            old = [name for name, info in found.items() if _expired(info, now)]
            self._forget(old[:_PRUNE_PER_LOOK])
        return found

    def find(self, key: str, recent: Mapping[str, ObjectInfo] | None = None) -> ObjectInfo | None:
        """The key's tombstone: from `recent` (a batch's listing) if given, else a HEAD."""
        if self._records is None:
            return None
        if recent is not None:
            return recent.get(_name(key))
        return self._records.head(_name(key))

    @staticmethod
    def by(key: str, tombstone: ObjectInfo, lease: str | None) -> bool:
        """Whether the delete was made by the store holding `lease`: that store's own
        operations on a key are ordered, so its delete never overrides its own later save."""
        return lease is not None and tombstone.etag == content_etag(_body(key, lease))

    def prune(self, now: float) -> int:
        """Forget deletes older than the horizon; how many were forgotten."""
        if self._records is None:
            return 0
        old = [info.key for info in self._records.list(_PREFIX) if _expired(info, now)]
        self._forget(old)
        return len(old)

    def _forget(self, names: list[str]) -> None:
        assert self._records is not None
        for name in names:
            self._records.delete(name)


def _expired(info: ObjectInfo, now: float) -> bool:
    return info.last_modified is not None and info.last_modified < now - HORIZON
