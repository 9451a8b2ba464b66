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
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from objectstore_s3.errors import (
    LocalFileConflictError,
    LocalPathClashError,
    ObjectStoreError,
    StorageLimitExceededError,
    SupersededWriteError,
)
from objectstore_s3.local.cache import NodeCache
from objectstore_s3.local.filestate import FileStates
from objectstore_s3.local.segments import PendingEntry
from objectstore_s3.local.state import LocalState
from objectstore_s3.quota import Quota
from objectstore_s3.transport.base import Backend, Base, ObjectInfo, Progress

from .attempts import Pending, Superseded, refused
from .commit import Committer
from .keylocks import KeyLocks
from .view import NodeView

__all__ = ["Expect", "Report", "Writer"]

log = logging.getLogger("objectstore_s3")

Report = Callable[[ObjectStoreError], None]


@dataclass(frozen=True)
class Expect:
    """A user's precondition on a save: the object has ETag `etag`, or (`absent`) no
    object exists."""

    etag: str | None = None
    absent: bool = False

    def base(self, known: Base, head: Callable[[], ObjectInfo | None], key: str) -> Base:
        """The write's precondition. The size replaced comes from what this node knows
        (`known`) or a HEAD; an `if_match` the bucket already contradicts fails before
        anything is sent (the server checks the rest)."""
        if self.absent:
            return Base.absent()
        if known.known and known.etag == self.etag:
            return known
        current = head()
        if current is None or current.etag != self.etag:
            raise refused(key, Base(self.etag, 0, True), current)
        return Base(current.etag, current.size, True)


class Writer:
    """What both modes share: the per-key locks, commits, local-file syncs, replay."""

    def __init__(
        self,
        backend: Backend,
        local: LocalState,
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
        self.journal = local.journal
        self.cache = local.cache
        self.states = local.states
        self.files = local.files
        self._locks = KeyLocks()
        self._flush_lock = threading.RLock()
        self._refused: set[tuple[str, int, int]] = set()

    def written(self, key: str) -> int:
        """See KeyLocks.written (read-ahead's check that a value is still current)."""
        return self._locks.written(key)

    def locked(self, key: str) -> AbstractContextManager[None]:
        return self._locks.locked(key)

    def accepting(self, key: str) -> AbstractContextManager[None]:
        return self._locks.accepting(key)

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
        expect: Expect | None = None,
    ) -> ObjectInfo:
        """Upload a file under `key` now. The key's own local file is recorded as synced;
        an automatic sync gives way to an object changed since the file's last sync.
        `expect`: the user's precondition (see `expected`)."""
        own = path == self.states.path_for(key)
        with self.locked(key), self.files.key_lock(key):
            before = path.stat()
            if automatic:
                state = self.states.state(key)
                base = Base(state.etag, state.size, True) if state and state.etag else Base.absent()
            elif expect is not None:
                base = self.expected(key, expect)
            else:
                base = self.view.base(key)
            try:
                result = self.committer.put_file(
                    key,
                    path,
                    base,
                    unchanged=FileStates.unchanged_since(path, before),
                    size=before.st_size,
                    keep_rival=automatic,
                    progress=progress,
                    strict=expect is not None,
                )
            except BaseException:
                self.cache.invalidate(key)
                raise
            if isinstance(result, Superseded):
                raise self.files.conflict(key, path)
            with self.accepting(key), _invalidating(self.cache, key):
                self.cache.invalidate(key)
                if own:
                    self.states.record(key, result.etag, before)
                self.supersede_pending(key)
        return result

    def supersede_pending(self, key: str) -> None:
        """A write just made replaces whatever was pending for the key."""
        entry = self.journal.get(key)
        if entry is not None and self.journal.complete(entry, "superseded", None):
            self.quota.release(entry.token)

    def after_put(self, key: str, data: bytes, info: ObjectInfo, *, accepted: bool) -> None:
        """Only now that the bucket took the value may the cache and the local file
        claim it. `accepted`: it was accepted earlier (write-behind), so a local file
        written since is newer and stays, as a change from what the bucket now holds."""
        self.cache.store(key, data, info.etag)
        if not self.states.is_registered(key):
            return
        if accepted and self.states.is_changed(key):
            self.states.rebase(key, info.etag)
            return
        try:
            self.files.write(key, data, info.etag)
        except LocalPathClashError:
            # Its place on disk is another key's folder now: the key reads from the
            # cache and the bucket instead of a file it can no longer have.
            self.states.unregister(key)

    def _after_delete(self, key: str) -> None:
        self.cache.invalidate(key)
        if self.states.is_registered(key) or self.states.path_for(key).is_file():
            self.states.forget(key)

    def _write_through(self, key: str, data: bytes, expect: Expect | None = None) -> ObjectInfo:
        """Commit a value now; it replaces whatever was pending for the key. `expect`:
        the user's precondition (see `expected`), checked by the server."""
        with self.locked(key):
            base = self.view.base(key) if expect is None else self.expected(key, expect)
            try:
                result = self.committer.put(key, data, base, strict=expect is not None)
            except BaseException:
                self.cache.invalidate(key)
                raise
            assert isinstance(result, ObjectInfo)
            with self.accepting(key), _invalidating(self.cache, key):
                self.after_put(key, data, result, accepted=False)
                self.supersede_pending(key)
            return result

    def put_checked(self, key: str, data: bytes, expect: Expect | None) -> ObjectInfo:
        """Write through, in either mode, and return what the bucket answered: a
        conditional save needs the server's verdict, and the caller the new ETag."""
        return self._write_through(key, data, expect)

    def expected(self, key: str, expect: Expect) -> Base:
        """The precondition of a user's `if_match` / `if_absent`, after this node's
        pending work on the key is committed (the user's ETag is the bucket's)."""
        self.settle(key)
        return expect.base(self.view.base(key), lambda: self.backend.head(key), key)

    def settle(self, key: str) -> None:
        """Commit this node's pending work on `key` now."""
        with self.locked(key):
            entry = self.journal.get(key)
            if entry is not None:
                self._upload(entry, None)

    # -- flushing --------------------------------------------------------------------------

    def flush(self, *, settle: bool = True) -> None:
        """Upload pending work and changed local files, then settle usage (unless the
        caller settles itself). Raises if the bucket cannot be written (the work stays
        pending)."""
        with self._flush_lock:
            self.upload_pending()
            self.sync_files()
            if settle:
                self.quota.settle()

    def sync_files(self, settle_interval: float | None = None) -> None:
        """Automatic sync of changed local files. With `settle_interval` (the timer), only
        files that stopped changing; a refusal or conflict is reported once per version."""
        for key in self.states.changed_keys():
            path = self.states.path_for(key)
            if settle_interval is not None and self.states.settled(key, settle_interval) is None:
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
            # Pending creates are judged against recent deletes: one listing for the batch.
            creates = any(entry.op == "put" and entry.base.etag is None for entry in entries)
            clock = self.backend.server_time()
            now = clock[0] if clock else None
            recent = self.committer.tombstones.recent(now) if creates else None
            if len(entries) == 1:
                self._upload(entries[0], recent)
                return
            workers = min(self.concurrency, len(entries))
            with ThreadPoolExecutor(workers, thread_name_prefix="objectstore-upload") as pool:
                futures = [pool.submit(self._upload, entry, recent) for entry in entries]
            errors = [error for future in futures if (error := future.exception())]
            if errors:
                raise errors[0]

    def _upload(self, entry: PendingEntry, recent: Mapping[str, ObjectInfo] | None) -> None:
        key = entry.key
        with self.locked(key):
            if self.journal.get(key) is not entry:
                return  # replaced meanwhile: the newer entry is uploaded instead
            try:
                self._commit_entry(entry, recent)
            except BaseException:
                with self.accepting(key):
                    # Interrupted after the upload landed, the cache may not have caught up.
                    self.cache.invalidate(key)
                    if self.journal.get(key) is not entry:  # superseded while in flight
                        self.quota.release(entry.token)
                raise

    def _commit_entry(self, entry: PendingEntry, recent: Mapping[str, ObjectInfo] | None) -> None:
        key = entry.key
        accepted = accepted_window(entry, self.backend.server_time())
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
            pending = Pending(accepted, entry.lease, recent)
            result = self.committer.put(key, data, entry.base, pending=pending, held=entry.token)
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
                self.after_put(key, data, result, accepted=True)
            else:
                self.cache.invalidate(key)  # a newer save is pending: the view shows it

    def _drop(
        self, entry: PendingEntry, superseded: Superseded | None, why: Exception | None = None
    ) -> None:
        self.quota.release(entry.token)
        if not self.journal.complete(entry, "dropped", None):
            return  # a newer save replaced it meanwhile: nothing is lost
        self.cache.invalidate(entry.key)
        self.report(_dropped(entry, superseded, why))


def _dropped(
    entry: PendingEntry, superseded: Superseded | None, why: Exception | None
) -> SupersededWriteError:
    """What a pending write that was not applied is reported as."""
    what = "save" if entry.op == "put" else "delete"
    if why is not None:
        reason = str(why)
    elif superseded is not None and superseded.current is None:
        reason = (
            "the key was deleted by another writer after this node accepted the save, "
            "so it stays deleted"
        )
    else:
        reason = (
            "the object was written by another writer after this node accepted it, "
            "so the newer object was kept"
        )
    return SupersededWriteError(f"A pending {what} of '{entry.key}' was not applied: {reason}.")


@contextmanager
def _invalidating(cache: NodeCache, key: str) -> Iterator[None]:
    """Updates after the bucket answered: if anything (an interrupt included) ends them
    early, the key's cache entry goes, so it never claims an older value."""
    try:
        yield
    except BaseException:
        cache.invalidate(key)
        raise


def accepted_window(entry: PendingEntry, now: tuple[float, float] | None) -> tuple[float, float]:
    """When a pending entry was accepted, on the server's clock (bounds); `now`: the
    server's clock now as this node knows it."""
    if entry.accepted_server is not None:
        return entry.accepted_server
    # Accepted before this node had heard the server's clock: convert its wall time with
    # this node's current offset (the journal never leaves the node).
    wall = time.time()
    if now is None:
        return (entry.accepted_at - 5.0, entry.accepted_at + 5.0)
    return (entry.accepted_at + now[0] - wall - 1.0, entry.accepted_at + now[1] - wall + 1.0)
