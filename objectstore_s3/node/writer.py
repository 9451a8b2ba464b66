"""The one writer every write goes through: value saves, synced local files, uploaded
files and deletes, in write-through or write-behind mode.

Writes of one key are serialized by a per-key lock, and the cache, the local file and
the journal are updated inside it, after the bucket answered: so per-key order holds by
construction, and a failed write never leaves any of them claiming success. The two
modes differ only in `put` and `delete`: write-through commits at once; write-behind
journals (reserving quota first, so an accepted save is never refused later) and
commits at `flush()` or every interval. Both replay what a dead process on the node
left in its journal. Commits themselves are in commit.py.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from objectstore_s3.errors import (
    KeyNotFoundError,
    LocalFileConflictError,
    LocalPathClashError,
    ObjectStoreError,
    StorageLimitExceededError,
    SupersededWriteError,
)
from objectstore_s3.local.cache import NodeCache
from objectstore_s3.local.files import LocalFiles
from objectstore_s3.local.journal import Journal
from objectstore_s3.local.segments import PendingEntry
from objectstore_s3.quota.transaction import Quota
from objectstore_s3.transport.base import Backend, Base, ObjectInfo, Progress

from .commit import Committer, Superseded
from .view import NodeView

__all__ = ["WriteBehind", "WriteThrough", "Writer"]

log = logging.getLogger("objectstore_s3")

Report = Callable[[ObjectStoreError], None]
_STRIPES = 256


class Writer:
    """What both modes share: the per-key locks, commits, local-file syncs, replay."""

    def __init__(
        self,
        backend: Backend,
        view: NodeView,
        quota: Quota,
        committer: Committer,
        report: Report,
        *,
        concurrency: int,
    ) -> None:
        self.backend = backend
        self.view = view
        self.quota = quota
        self.committer = committer
        self.report = report
        self.concurrency = concurrency
        self.journal: Journal = view.journal
        self.cache: NodeCache = view.cache
        self.files: LocalFiles = view.files
        self._stripes = [threading.RLock() for _ in range(_STRIPES)]
        self._accept_stripes = [threading.RLock() for _ in range(_STRIPES)]
        self._flush_lock = threading.RLock()
        self._refused: set[tuple[str, int, int]] = set()
        self._writes = [0] * _STRIPES

    def written(self, key: str) -> int:
        """A count that changes when this process starts or ends a write of the key (or of
        a key sharing its lock): a value read between two equal counts is current."""
        return self._writes[zlib.crc32(key.encode()) % _STRIPES]

    @contextmanager
    def locked(self, key: str) -> Iterator[None]:
        """This process's lock on committing one key (held across the request)."""
        stripe = zlib.crc32(key.encode()) % _STRIPES
        with self._stripes[stripe]:
            self._writes[stripe] += 1
            try:
                yield
            finally:
                self._writes[stripe] += 1

    @contextmanager
    def accepting(self, key: str) -> Iterator[None]:
        """A short lock on one key's node state: a write-behind accept (which reads the
        key's base and journals it) and the bookkeeping after a commit never interleave,
        so a save accepted during an upload expects that upload's object."""
        stripe = zlib.crc32(key.encode()) % _STRIPES
        with self._accept_stripes[stripe]:
            self._writes[stripe] += 1
            try:
                yield
            finally:
                self._writes[stripe] += 1

    # -- the operations (modes override put and delete) ------------------------------------

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def put_file(
        self,
        key: str,
        path: Path,
        *,
        automatic: bool = False,
        progress: Progress | None = None,
    ) -> bool:
        """Upload a file under `key` now. The key's own local file is recorded as synced;
        an automatic sync gives way to an object changed since the file's last sync."""
        own = path == self.files.path_for(key)
        with self.locked(key), self.files.key_lock(key):
            before = path.stat()
            if automatic:
                state = self.files.state(key)
                base = Base(state.etag, state.size, True) if state and state.etag else Base.absent()
            else:
                base = self.view.base(key)
            try:
                result = self.committer.put_file(
                    key,
                    path,
                    base,
                    unchanged=LocalFiles.unchanged_since(path, before),
                    size=before.st_size,
                    keep_rival=automatic,
                    progress=progress,
                )
            except BaseException:
                self.cache.invalidate(key)
                raise
            if isinstance(result, Superseded):
                raise self.files.conflict(key, path)
            with self.accepting(key):
                self.cache.invalidate(key)
                if own:
                    self.files.record(key, result.etag, before)
                self._supersede_pending(key)
        return True

    def _supersede_pending(self, key: str) -> None:
        """A write just made replaces whatever was pending for the key."""
        entry = self.journal.get(key)
        if entry is not None and self.journal.complete(entry, "superseded", None):
            self.quota.release(entry.token)

    def _after_put(self, key: str, data: bytes, info: ObjectInfo, *, accepted: bool) -> None:
        """Only now that the bucket took the value may the cache and the local file
        claim it. `accepted`: it was accepted earlier (write-behind), so a local file
        written since is newer and stays, as a change from what the bucket now holds."""
        self.cache.store(key, data, info.etag)
        if not self.files.is_registered(key):
            return
        if accepted and self.files.is_changed(key):
            self.files.rebase(key, info.etag)
            return
        try:
            self.files.write(key, data, info.etag)
        except LocalPathClashError:
            # Its place on disk is another key's folder now: the key reads from the
            # cache and the bucket instead of a file it can no longer have.
            self.files.unregister(key)

    def _after_delete(self, key: str) -> None:
        self.cache.invalidate(key)
        if self.files.is_registered(key) or self.files.path_for(key).is_file():
            self.files.forget(key)

    def _write_through(self, key: str, data: bytes) -> None:
        """Commit a value now; it replaces whatever was pending for the key."""
        with self.locked(key):
            try:
                result = self.committer.put(key, data, self.view.base(key))
            except BaseException:
                self.cache.invalidate(key)
                raise
            assert isinstance(result, ObjectInfo)
            with self.accepting(key):
                self._after_put(key, data, result, accepted=False)
                self._supersede_pending(key)

    def _require_existing(self, key: str) -> Base:
        exists, base = self.view.presence(key)
        if not exists:
            raise KeyNotFoundError(
                key,
                f"The key '{key}' does not exist in the Object Store. Please use "
                "ObjectStore.ContainsKey(key) to check if an object exists before deleting.",
            )
        return base

    # -- flushing --------------------------------------------------------------------------

    def flush(self) -> None:
        """Upload pending work and changed local files, then settle usage. Raises if the
        bucket cannot be written (the work stays pending)."""
        with self._flush_lock:
            self.upload_pending()
            self.sync_files()
            self.quota.settle()

    def sync_files(self, settle_interval: float | None = None) -> None:
        """Automatic sync of changed local files. With `settle_interval` (the timer), only
        files that stopped changing; a refusal or conflict is reported once per version."""
        for key in self.files.changed_keys():
            path = self.files.path_for(key)
            if settle_interval is not None and self.files.settled(key, settle_interval) is None:
                continue
            try:
                self.put_file(key, path, automatic=True)
            except (StorageLimitExceededError, LocalFileConflictError) as exc:
                info = path.stat()
                version = (key, info.st_size, info.st_mtime_ns)
                if version not in self._refused:
                    self._refused.add(version)
                    self.report(exc)

    def upload_pending(self) -> None:
        """Commit every journaled entry, in parallel; the first error is raised once every
        other entry has had its try (failed entries stay journaled)."""
        with self._flush_lock:
            entries = self.journal.entries()
            if not entries:
                return
            if self.backend.server_time() is None:
                self.backend.head(".objectstore-clock")  # any answer tells the server's time
            if len(entries) == 1:
                self._upload(entries[0])
                return
            workers = min(self.concurrency, len(entries))
            with ThreadPoolExecutor(workers, thread_name_prefix="objectstore-upload") as pool:
                futures = [pool.submit(self._upload, entry) for entry in entries]
            errors = [error for future in futures if (error := future.exception())]
            if errors:
                raise errors[0]

    def _upload(self, entry: PendingEntry) -> None:
        key = entry.key
        with self.locked(key):
            if self.journal.get(key) is not entry:
                return  # replaced meanwhile: the newer entry is uploaded instead
            try:
                self._commit_entry(entry)
            except BaseException:
                with self.accepting(key):
                    if self.journal.get(key) is not entry:  # superseded while in flight
                        self.quota.release(entry.token)
                raise

    def _commit_entry(self, entry: PendingEntry) -> None:
        key = entry.key
        accepted = self._accepted(entry)
        if entry.op == "delete":
            outcome = self.committer.delete(key, entry.base, accepted=accepted)
            with self.accepting(key):
                if isinstance(outcome, Superseded):
                    self._drop(entry, outcome)
                    return
                self.journal.complete(entry, "uploaded", None)
                self.cache.invalidate(key)
            return
        data = self.journal.data(entry)
        if data is None:
            return  # uploaded and released by a concurrent flush
        try:
            result = self.committer.put(key, data, entry.base, accepted=accepted, held=entry.token)
        except StorageLimitExceededError as exc:
            # Only an entry whose reservation was lost (a dead process's) can lack room.
            with self.accepting(key):
                self._drop(entry, None, exc)
            return
        with self.accepting(key):
            if isinstance(result, Superseded):
                self._drop(entry, result)
            elif self.journal.complete(entry, "uploaded", result.etag):
                self.quota.release(entry.token)  # what the upload did not spend, if any
                self._after_put(key, data, result, accepted=True)
            else:
                self.cache.invalidate(key)  # a newer save is pending: the view shows it

    def _accepted(self, entry: PendingEntry) -> tuple[float, float]:
        """When the entry was accepted, on the server's clock (bounds)."""
        if entry.accepted_server is not None:
            return entry.accepted_server
        # Accepted before this node had heard the server's clock: convert its wall time
        # with this node's current offset (the journal never leaves the node).
        now = self.backend.server_time()
        wall = time.time()
        if now is None:
            return (entry.accepted_at - 5.0, entry.accepted_at + 5.0)
        return (entry.accepted_at + now[0] - wall - 1.0, entry.accepted_at + now[1] - wall + 1.0)

    def _drop(
        self, entry: PendingEntry, superseded: Superseded | None, why: Exception | None = None
    ) -> None:
        self.quota.release(entry.token)
        if not self.journal.complete(entry, "dropped", None):
            return  # a newer save replaced it meanwhile: nothing is lost
        self.cache.invalidate(entry.key)
        what = "save" if entry.op == "put" else "delete"
        reason = (
            str(why)
            if why is not None
            else "the object was written by another writer after this node accepted it, "
            "so the newer object was kept"
        )
        self.report(
            SupersededWriteError(f"A pending {what} of '{entry.key}' was not applied: {reason}.")
        )

    def close(self) -> None:
        """Let go of the journal (what was not uploaded stays for a replay)."""
        self.journal.close()


class WriteThrough(Writer):
    """Every save and delete reaches the bucket before it returns."""

    def put(self, key: str, data: bytes) -> None:
        self._write_through(key, data)

    def delete(self, key: str) -> None:
        with self.locked(key):
            base = self._require_existing(key)
            try:
                self.committer.delete(key, base)
            except BaseException:
                # The object is still there (an unanswered DELETE is checked with a
                # HEAD): the local file stays; only the cache entry goes (it may be stale).
                self.cache.invalidate(key)
                raise
            self._after_delete(key)
            self._supersede_pending(key)


class WriteBehind(Writer):
    """Saves and deletes are journaled and reach the bucket at flush or every interval."""

    def put(self, key: str, data: bytes) -> None:
        with self.accepting(key):
            if self._accept(key, data):
                return
        # At the limit, a key this node knows to exist is written through: its effect is
        # then exact, and nothing pending can be refused later.
        self._write_through(key, data)

    def _accept(self, key: str, data: bytes) -> bool:
        """Journal the save, holding room for it; False: write it through instead."""
        base = self.view.base(key)
        previous = self.journal.get(key)
        token = uuid.uuid4().hex
        try:
            # The upload may find the key gone (deleted elsewhere meanwhile) and create
            # it, so a pending save holds room for a new object of its size.
            self.quota.keep(token, key, 1, len(data), replaces=previous.token if previous else None)
        except StorageLimitExceededError:
            if base.etag is None:
                raise
            return False
        try:
            self.journal.record(
                key,
                "put",
                data,
                base=base,
                accepted_server=self.backend.server_time(),
                token=token,
                lease=self.quota.lease_id,
            )
        except BaseException:
            self.quota.release(token)
            raise
        if self.files.is_registered(key):
            try:
                self.files.write(key, data, None)  # what the bucket holds once uploaded
            except LocalPathClashError:
                self.files.unregister(key)
        return True

    def delete(self, key: str) -> None:
        with self.accepting(key):
            base = self._require_existing(key)
            previous = self.journal.get(key)
            self.journal.record(
                key, "delete", base=base, accepted_server=self.backend.server_time()
            )
            if previous is not None:
                self.quota.release(previous.token)
            self._after_delete(key)
