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

On a bucket that keeps versions, a delete leaves a delete marker whose Last-Modified is the
delete's time: the key's latest delete marker is its record (whoever deleted it, another
tool included, and never lost to a crash), so no tombstone is written there; a tombstone
left before versioning was turned on still counts, the newer of the two deciding.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

from objectstore_s3.errors import ObjectStoreError
from objectstore_s3.quota import Versioning
from objectstore_s3.quota.versions import by_key, key_versions
from objectstore_s3.transport.base import Backend, ObjectInfo, VersionInfo, content_etag

from .attempts import Pending, written_after

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

    def __init__(
        self,
        records: Backend | None,
        objects: Backend | None = None,
        versioning: Versioning | None = None,
    ) -> None:
        self._records = records
        self._objects = objects  # the keys' own scope, for their delete markers
        self._versioning = versioning

    def _markers(self, *, sure: bool = False) -> bool:
        """Whether deletes leave delete markers here (a bucket that keeps versions).
        `sure`: only if known so, without asking (None, unknown, counts as no)."""
        if self._objects is None or self._versioning is None:
            return False
        state = self._versioning.known if sure else self._versioning.state
        return state is not None and state != "off"

    def write(self, key: str, lease: str) -> None:
        """Remember that `key` was just deleted by the store holding `lease` (a bucket that
        keeps versions remembers it by itself: its delete marker). Written unless that is
        known: a needless tombstone costs a small object, a missing one a replayed save."""
        if self._records is None or self._markers(sure=True):
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
        """The key's last delete: its latest delete marker (a bucket that keeps versions)
        or its tombstone, from `recent` (a batch's listing) if given, else a HEAD; the
        newer of the two if both exist."""
        marker = self.marker(key) if self._markers() else None
        if self._records is None:
            return marker
        found = recent.get(_name(key)) if recent is not None else self._records.head(_name(key))
        if marker is None or found is None:
            return marker or found
        return max(marker, found, key=lambda info: info.last_modified or 0.0)

    def marker(self, key: str) -> ObjectInfo | None:
        """The key's delete marker, as a record of its delete, if its latest version is one."""
        assert self._objects is not None
        versions = key_versions(self._objects, key)
        if not versions or not versions[0].deleted:
            return None
        return ObjectInfo(key, 0, "", versions[0].last_modified, version_id=versions[0].version_id)

    def deleted_after(self, key: str, pending: Pending, *, expected_object: bool) -> bool:
        """Whether the key's last delete came after the pending write was accepted. When
        the write expected an object, a delete within the clock's resolution counts (as a
        newer object would); a create gives way only to a delete surely after it (a create
        looks in its batch's listing, `pending.recent`)."""
        tombstone = self.find(key, None if expected_object else pending.recent)
        if tombstone is None:
            if expected_object:
                now = self._objects.server_time() if self._objects is not None else None
                old = now is not None and pending.accepted[1] < now[0] - HORIZON
                log.warning(
                    "A pending save of '%s' expected an object that is gone, and no record "
                    "of its delete %s: the save is applied",
                    key,
                    "remains (older than the replay horizon)" if old else "was found",
                )
            return False
        if Tombstones.by(key, tombstone, pending.lease):
            return False
        after = written_after(tombstone, pending.accepted)
        return after is not False if expected_object else after is True

    @staticmethod
    def by(key: str, tombstone: ObjectInfo, lease: str | None) -> bool:
        """Whether the delete was made by the store holding `lease`: that store's own
        operations on a key are ordered, so its delete never overrides its own later save."""
        return lease is not None and tombstone.etag == content_etag(_body(key, lease))

    def prune(self, now: float) -> int:
        """Forget deletes older than the horizon; how many were forgotten. Where versions
        are kept, every version of them, and of those a plain delete left under a delete
        marker (before this was so): records nobody reads, never counted, never pruned."""
        if self._records is None:
            return 0
        if not self._markers(sure=True):
            old = [info.key for info in self._records.list(_PREFIX) if _expired(info, now)]
            self._forget(old)
            return len(old)
        forgotten = 0
        for versions in by_key(self._records.list_versions(_PREFIX)):
            latest = versions[0]
            if latest.deleted or _expired(latest, now):
                for version in versions:
                    self._records.delete_version(version.key, version.version_id)
                forgotten += not latest.deleted
        return forgotten

    def _forget(self, names: list[str]) -> None:
        assert self._records is not None
        versions = self._markers(sure=True)  # a plain delete would keep it, noncurrent
        for name in names:
            if not versions:
                self._records.delete(name)
                continue
            for version in key_versions(self._records, name):
                self._records.delete_version(name, version.version_id)


def _expired(info: ObjectInfo | VersionInfo, now: float) -> bool:
    return info.last_modified is not None and info.last_modified < now - HORIZON
