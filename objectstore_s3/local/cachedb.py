"""The node cache's database as every process of the node shares it: opened on the node's
current epoch, updated so that a failure never leaves an entry valid that a write
superseded, and repaired so that every process moves to the new database.

An update runs in one transaction that also resolves the key's stale marker
(cachemarks.py). When it fails:
- real damage (SQLite cannot read the database): the epoch is retired, which moves every
  process off the database, then its files are removed; the new one starts empty.
- anything else (a busy lock past `lock_timeout`, a full disk or quota): the key's entry
  is deleted if a smaller transaction still can (a full disk), else the key is marked
  stale (one empty file), else the epoch is retired (two renames, no space needed). Only
  if even that fails does the write raise `LocalStorageError`.
After a write, the epoch it changed must still be live: a database that another process
replaced meanwhile is not read by anyone any more, and the new one may hold a fill older
than the write, so the key is forgotten there too.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diskcache

from objectstore_s3.errors import LocalStorageError
from objectstore_s3.fs import private_directory

from .cachemarks import CacheMarks, is_damage, remove_diskcache_files
from .cachesql import UnsafeEntry, new_epoch, open_database, stored_epoch

__all__ = ["NEVER", "SharedDatabase", "Slot", "bump"]

log = logging.getLogger("objectstore_s3")

_STORAGE = (sqlite3.DatabaseError, OSError, diskcache.Timeout)
NEVER = -1  # a generation no key has: a fill taken with it never lands


class Slot:
    """Where one key of one namespace lives: its entry's row, its generation's row and
    its stale marker's name."""

    __slots__ = ("entry", "generation", "marker")

    def __init__(self, namespace: str, key: str) -> None:
        self.entry = f"{namespace}/{key}"
        self.generation = f"{namespace}#gen/{key}"
        self.marker = hashlib.blake2b(self.entry.encode(), digest_size=16).hexdigest()


Change = Callable[[diskcache.Cache, bool], None]  # (cache, stale), inside a transaction


class SharedDatabase:
    """The node's cache database as this process uses it (one per NodeCache)."""

    def __init__(self, directory: Path, size_limit: int, lock_timeout: float) -> None:
        self.directory = directory
        self.size_limit = size_limit
        self.lock_timeout = lock_timeout
        self.lock = threading.Lock()  # one operation at a time in this process
        self._folder = str(directory)
        self._marks = CacheMarks(directory)
        self._cache: diskcache.Cache | None = None
        self._epoch: int | None = None  # the epoch of the database `_cache` has open
        self._prefix = ""  # where its stale markers are
        self._stored = 0  # bytes stored since the last cull

    # -- reads ---------------------------------------------------------------------------

    def read(self, action: Callable[[diskcache.Cache], Any], slot: Slot) -> Any:
        """Run a lookup; any storage failure is a miss (damage is repaired)."""
        with self.lock:
            try:
                return action(self.open())
            except UnsafeEntry:
                log.warning("Dropped an unsafe (pickled) cache entry for '%s'", slot.entry)
                self._write_locked(slot, self.forget(slot))
            except _STORAGE as exc:
                if not isinstance(exc, FileNotFoundError):  # a value file removed: a miss
                    self._failed(exc)
            return None

    def usable(self, slot: Slot) -> bool:
        """No process marked the key stale, and the database is still the node's: the one
        `lstat` a hit costs (cachemarks.py). Call inside `read`."""
        try:
            os.lstat(self._prefix + slot.marker)
        except FileNotFoundError:
            return True
        except NotADirectoryError:
            self._drop()  # retired by a repair: reopen at the next call
        except OSError:
            pass  # cannot tell: not served
        return False

    # -- updates -------------------------------------------------------------------------

    def stored(self, size: int) -> None:
        """An entry of `size` bytes was set: culled after each size_limit/64 stored."""
        self._stored += size + 512  # the row's own overhead, roughly

    def forget(self, slot: Slot) -> Change:
        def change(cache: diskcache.Cache, stale: bool) -> None:
            bump(cache, slot)
            cache.delete(slot.entry)

        return change

    def optional(self, slot: Slot, change: Change, still: Callable[[], bool]) -> None:
        """A fill or a touch (if `still()`, under the lock): if it fails, nothing changed
        and nothing can be stale."""
        with self.lock:
            if not still():
                return
            try:
                self._commit(self.open(), slot, change)
            except _STORAGE as exc:
                self._failed(exc)

    def write(self, slot: Slot, change: Change, *, busy: bool = False) -> bool:
        """Apply a write's change; afterwards no process of the node reads an entry of the
        key older than the write, whatever failed. Returns whether the lock was busy
        (`busy`: it was, for another key just before: mark without waiting again)."""
        with self.lock:
            return self._write_locked(slot, change, busy)

    def names(self, prefix: str) -> list[str] | None:
        """The entries' names under `prefix`; None if they cannot be listed, and then no
        process uses this database any more (which entries to forget is unknown)."""
        with self.lock:
            try:
                return [n for n in self.open().iterkeys() if str(n).startswith(prefix)]
            except (*_STORAGE, UnsafeEntry) as exc:  # a planted pickled key included
                log.warning("Node cache at %s could not be listed (%s)", self.directory, exc)
                if not (is_damage(exc) and self._repair(exc)):
                    self._retire(exc, prefix + "*")
                return None

    def _commit(self, cache: diskcache.Cache, slot: Slot, change: Change) -> None:
        """Run `change` in one transaction that also resolves the key's stale marker, if
        it has one (cachemarks.py says why this order is safe)."""
        assert self._epoch is not None
        epoch = self._epoch
        with cache.transact():
            seen = self._marks.seen(epoch, slot.marker)
            change(cache, seen is not None)
        if seen is not None:
            self._marks.release(epoch, slot.marker, seen)
        if self._stored >= max(self.size_limit // 64, 64 * 1024):
            # After the transaction has committed: inside it, freed pages do not lower
            # the volume yet and cull() would empty the cache.
            self._stored = 0
            with contextlib.suppress(*_STORAGE):
                cache.cull()

    def _write_locked(self, slot: Slot, change: Change, busy: bool = False) -> bool:
        for _ in range(3):
            try:
                if busy:
                    raise diskcache.Timeout
                cache = self.open()
                epoch = self._epoch
                self._commit(cache, slot, change)
            except (*_STORAGE, UnsafeEntry) as exc:
                busy = isinstance(exc, diskcache.Timeout)
                epoch = self._unusable(slot, exc)
            # The database written is still the node's (checked after the write): any
            # newer one starts empty, after this write was accepted.
            if epoch is None or self._marks.is_live(epoch):
                return busy
            # Replaced by another process meanwhile (or the folder was removed): the new
            # database may hold a fill older than this write. Forget the key there too.
            self._drop()
            change = self.forget(slot)
        raise LocalStorageError(
            f"The node cache at {self.directory} kept being replaced while '{slot.entry}' "
            "was updated; other processes of this node may read its previous value. Remove "
            "that folder (the cache is rebuilt from the bucket)."
        )

    def _unusable(self, slot: Slot, exc: BaseException) -> int | None:
        """After a failed update: make the key's entry unusable for every process. Returns
        the epoch changed; None: no process will read the database that may hold it."""
        if is_damage(exc) and self._repair(exc):
            return None
        self._rollback()
        epoch = self._epoch
        if self._cache is not None and not isinstance(exc, diskcache.Timeout):
            try:  # deleting needs less room than the value did (a full disk)
                self._commit(self._cache, slot, self.forget(slot))
                return epoch
            except _STORAGE:
                self._rollback()
        try:
            for each in [epoch] if epoch is not None else self._marks.live_epochs():
                self._marks.mark(each, slot.marker)
            return epoch
        except OSError as again:
            log.warning("Could not mark '%s' stale in the node cache (%s)", slot.entry, again)
        self._retire(exc, slot.entry)
        return None

    def _retire(self, exc: BaseException, what: str) -> None:
        """The last resort: every process leaves the database (two renames, no free space
        needed); the next open removes its files and starts a new one."""
        epoch = self._epoch
        self._drop()
        try:
            with self._marks.locked():
                if epoch is not None:
                    self._marks.retire(epoch)
                else:
                    self._marks.retire_all()
        except OSError as again:
            raise LocalStorageError(
                f"The node cache at {self.directory} could not be updated for '{what}' "
                f"({exc}) nor be set aside ({again}): other processes of this node may read "
                "a value older than the bucket's. Free disk space, then remove that folder "
                "(the cache is rebuilt from the bucket)."
            ) from again

    # -- opening and damage --------------------------------------------------------------

    def open(self) -> diskcache.Cache:
        """The node's current database (opened, or made, under the folder lock)."""
        if self._cache is None:
            private_directory(self.directory)
            with self._marks.locked():
                self._cache, self._epoch = self._connect_current()
            self._prefix = self._marks.prefix(self._epoch)
        return self._cache

    def _connect(self) -> diskcache.Cache:
        return open_database(self._folder, self.size_limit, self.lock_timeout)

    def _connect_current(self) -> tuple[diskcache.Cache, int]:
        """The node's database and its epoch (the folder lock is held). A database whose
        epoch was retired (a repair cut short, or the last resort of a full disk) is
        removed first: no process may read it again."""
        cache = self._connect()
        try:
            epoch = stored_epoch(self._folder, self.lock_timeout)
            if epoch is not None and self._marks.is_retired(epoch):
                cache.close()
                remove_diskcache_files(self.directory)
                self._marks.sweep()
                cache = self._connect()
                epoch = stored_epoch(self._folder, self.lock_timeout)
                if epoch is not None:
                    raise OSError(errno.EEXIST, "a set-aside cache database remains", self._folder)
            if epoch is None:
                epoch = new_epoch(self._folder, self.lock_timeout)
            self._marks.start(epoch)
        except BaseException:
            with contextlib.suppress(*_STORAGE):
                cache.close()
            raise
        return cache, epoch

    def _failed(self, exc: BaseException) -> None:
        """A lookup, fill or touch failed: nothing changed; damage is repaired."""
        if is_damage(exc):
            self._repair(exc)
        else:
            self._rollback()

    def _repair(self, exc: BaseException) -> bool:
        """Real damage: retire the database (every process leaves it), then remove it and
        nothing else. True once the node has left the damaged database."""
        log.warning("Node cache at %s is damaged (%s); rebuilding it", self.directory, exc)
        damaged = self._epoch
        self._drop()
        try:
            with self._marks.locked():
                if damaged is not None and not self._marks.is_live(damaged):
                    return True  # another process repaired it already
                if damaged is None:
                    try:  # it never opened here: another process may have repaired it
                        self._cache, self._epoch = self._connect_current()
                        self._prefix = self._marks.prefix(self._epoch)
                        return True
                    except _STORAGE as again:
                        if not is_damage(again):
                            raise
                self._marks.retire_all()
                remove_diskcache_files(self.directory)
                self._marks.sweep()
            return True
        except _STORAGE as again:
            log.warning(
                "Node cache at %s is unusable (%s); reads go to the bucket", self.directory, again
            )
            return False

    def _rollback(self) -> None:
        """Close this thread's connection: a failed COMMIT can leave its transaction open."""
        if self._cache is not None:
            with contextlib.suppress(*_STORAGE):
                self._cache.close()

    def _drop(self) -> None:
        self._rollback()
        self._cache, self._epoch = None, None

    def close(self) -> None:
        with self.lock:
            self._drop()


def bump(cache: diskcache.Cache, slot: Slot) -> None:
    """Replace the key's generation: fills taken before can no longer land."""
    cache.set(slot.generation, secrets.randbits(62))
