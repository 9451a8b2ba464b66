"""Retention on a versioned bucket: the noncurrent versions a key keeps (`keep_versions`,
`keep_versions_days`), and the pruning of the oldest ones beyond them, with exact quota.

S3 answers a DELETE of a version that is already gone with success, so who removed a
version cannot be told from the answer. Pruning is therefore counted by ownership: the
version a save pushes out of `keep_versions` (the data version `keep + 1` below the one the
save wrote) has exactly one owner, that save, which counts its bytes as freed once the
deletion is answered (a lost answer frees nothing: an over-count until a recount). Every
other pruning (by age, a setting lowered since, a reconcile) counts nothing and marks drift,
or is followed by a recount; so two nodes pruning one version never free it twice, and
the ledger never under-counts. See docs/quotas.md, "Versions".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass

from objectstore_s3.errors import ObjectStoreError, OutcomeUnknownError
from objectstore_s3.transport.base import Backend, ObjectInfo, VersionInfo

from .transaction import Quota
from .versions import by_key, key_versions

__all__ = ["DAY_SECONDS", "Retention"]

log = logging.getLogger("objectstore_s3")

DAY_SECONDS = 86400.0

_Count = Callable[[int, int], None]  # how a removal is told to the quota: (files, bytes)


@dataclass(frozen=True)
class Retention:
    """How many noncurrent versions a key keeps (`keep`), and for how long (`days`, since
    each became noncurrent, as AWS's NoncurrentDays); None: no bound."""

    keep: int | None = None
    days: float | None = None

    @property
    def active(self) -> bool:
        return self.keep is not None or self.days is not None

    def expired(self, versions: list[VersionInfo], now: float) -> list[VersionInfo]:
        """Of one key's versions (newest first), the noncurrent ones beyond the settings:
        from the first one past `keep` (delete markers do not count) or noncurrent for
        longer than `days`, every older one, delete markers included."""
        if not self.active:
            return []
        horizon = None if self.days is None else now - self.days * DAY_SECONDS
        kept = 0
        for index in range(1, len(versions)):
            version = versions[index]
            # A version became noncurrent when the next newer one was written.
            since = versions[index - 1].last_modified
            old = horizon is not None and since is not None and since < horizon
            kept += not version.deleted
            if old or (self.keep is not None and not version.deleted and kept > self.keep):
                return versions[index:]
        return []

    def pushed_out(self, versions: list[VersionInfo], version_id: str) -> VersionInfo | None:
        """The version the save of `version_id` pushed out of `keep`: the data version
        `keep + 1` below it. Versions leave a key only from its oldest end (pruning, by
        count or age, takes the oldest), so the offset between two versions never changes
        and each version has exactly one such save."""
        if self.keep is None:
            return None
        data = [version for version in versions if not version.deleted]
        mine = next((i for i, v in enumerate(data) if v.version_id == version_id), None)
        if mine is None or mine + self.keep + 1 >= len(data):
            return None
        return data[mine + self.keep + 1]

    def after_save(
        self, objects: Backend, quota: Quota, written: ObjectInfo, answered: Collection[str]
    ) -> None:
        """Prune the key after a save that wrote `written`, if its version is among those
        the save's own answers gave (`answered`: surely ours, not an equal value another
        writer saved): the version it pushed out is freed exactly; others beyond the
        settings count nothing (drift: the next recount frees them). Only where versioning
        is enabled (suspended, a save replaces the "null" version, pushing none out). A
        failure is logged, never the save's."""
        key, version_id = written.key, written.version_id
        if not self.active or version_id is None or version_id not in answered:
            return
        if quota.book.versioning.state != "enabled":
            return
        try:
            # The transaction opens before the listing: a recount made meanwhile then
            # weighs the decrease by the rebase rule (never subtracted twice).
            with quota.transaction(key) as spend:
                versions = key_versions(objects, key)
                owned = self.pushed_out(versions, version_id)
                if owned is not None:
                    _remove(objects, owned, spend.effect, spend.unknown)
            now = objects.server_time()
            others = [
                version
                for version in self.expired(versions, now[0] if now else 0.0)
                if owned is None or version.version_id != owned.version_id
            ]
            if others:
                with quota.transaction(key) as spend:
                    spend.unknown(0, 0)  # nothing freed is counted: drift, for a recount
                    for version in others:
                        _remove(objects, version, _uncounted, _uncounted)
        except ObjectStoreError as exc:
            log.warning("Could not prune old versions of '%s' (%s); a reconcile does", key, exc)

    def prune_all(self, objects: Backend, now: float) -> tuple[int, int]:
        """Remove, for every key under `objects`, the noncurrent versions beyond the
        settings. For a reconcile, whose recount follows: nothing is counted here.
        Returns (versions removed, their bytes)."""
        removed = freed = 0
        if not self.active:
            return 0, 0
        for versions in by_key(objects.list_versions()):
            for version in self.expired(versions, now):
                try:
                    objects.delete_version(version.key, version.version_id)
                except ObjectStoreError as exc:
                    log.warning(
                        "Could not remove version %s of '%s' (%s); the next reconcile retries",
                        version.version_id,
                        version.key,
                        exc,
                    )
                    continue
                removed += 1
                freed += version.size
        return removed, freed


def _remove(objects: Backend, version: VersionInfo, freed: _Count, lost: _Count) -> None:
    """Delete one version for good: `freed` counts it once answered, `lost` (its bytes
    never counted as freed) if the answer was lost."""
    try:
        objects.delete_version(version.key, version.version_id)
    except OutcomeUnknownError:
        lost(0, -version.size)
        raise
    freed(0, -version.size)


def _uncounted(files: int, size: int) -> None:
    """A removal whose bytes a recount frees, not this store."""
