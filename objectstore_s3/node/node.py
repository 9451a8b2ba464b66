"""The node: one object that builds a store's parts, owns them, and closes every one.

The node-local state (cache, journal, local files) is opened at construction, which also
replays what a dead process on this node accepted but did not upload. The parts that talk
to the bucket (the backend, its quota, the view and the writer) are built on the first
operation that needs them, so constructing a store does no network I/O.

The node belongs to the process that opened it. A forked child inherits a copy of it
(open journal segment, SQLite connections, pending work, exit hook) that must never be
used there: the parent still owns those files. On its first use in a child the node opens
fresh parts of the child's own (a new journal segment, cache connection, backend, lease and
exit hook) and keeps the inherited ones untouched and referenced (never closed: closing a
copy would flush or unlink what the parent owns). The exit hook does nothing in a child.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401  (its exit hook must be registered before ours)
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from objectstore_s3.errors import ObjectStoreError, ServerCapabilityError
from objectstore_s3.keys import KeySpace
from objectstore_s3.local.state import LocalState, open_local_state
from objectstore_s3.quota import NodeShelf, Quota, Retention, Usage
from objectstore_s3.transport.base import Backend
from objectstore_s3.transport.capability import probe

from .commit import Committer
from .copies import Copies
from .flusher import Flusher
from .modes import WriteBehind, WriteThrough
from .view import NodeView
from .writer import Report, Writer

if TYPE_CHECKING:
    from objectstore_s3.settings import ObjectStoreSettings

__all__ = ["Node", "Parts"]

log = logging.getLogger("objectstore_s3")

_warned: set[str] = set()  # buckets whose best-effort quotas were announced


@dataclass(frozen=True)
class Parts:
    """The parts that talk to the bucket, built together on first use."""

    objects: Backend
    quota: Quota
    view: NodeView
    writer: Writer
    copies: Copies  # restores and copies (server-side)


class Node:
    """A store's parts on this node, owned by the process that opened them."""

    def __init__(
        self, settings: ObjectStoreSettings, *, backend: Backend | None, report: Report
    ) -> None:
        s = self.settings = settings
        self.space = KeySpace(s.prefix, s.organization_id)
        self._report = report
        self._backend = backend
        self._opened_backend = False  # an injected backend is the caller's to close
        self.closed = False
        self._inherited: list[object] = []  # a forked child's copies of the parent's parts
        where = s.endpoint_url if s.endpoint_url != "local" else f"local:{s.server_dir}"
        self._namespace = (
            "memory" if backend is not None else where,
            s.bucket,
            s.prefix,
            s.organization_id,
        )
        self._open_here()

    def _open_here(self) -> None:
        """Open the node-local state and the background work of the current process."""
        s = self.settings
        self.owner = os.getpid()
        self._parts: Parts | None = None
        self._parts_lock = threading.Lock()
        self._local = open_local_state(
            s.cache_dir,
            s.local_root / s.organization_id,
            self._namespace,
            cache_size_limit=s.cache_size_limit,
            journal_fsync=s.journal_fsync,
        )
        self._flusher = self._start_flusher()
        self._exit_hook = _exit_hook(self)
        _register_exit(self._exit_hook)
        _watch_forks()

    def _here(self) -> None:
        """In a forked child, switch to parts of the child's own (see the module's notes)."""
        if self.owner == os.getpid():
            return
        with _child_lock():
            if self.owner == os.getpid() or self.closed:
                return
            log.info(
                "Object Store opened in process %d is used in forked process %d: the child "
                "gets its own journal, cache connection and lease (the parent's stay its own)",
                self.owner,
                os.getpid(),
            )
            self._inherited.append((self._local, self._parts, self._flusher, self._backend))
            if self._opened_backend:
                # The parent's HTTP connections are shared sockets: never used here.
                self._backend, self._opened_backend = None, False
            self._open_here()

    @property
    def local(self) -> LocalState:
        """This process's node-local state (cache, journal, local files)."""
        self._here()
        return self._local

    def _start_flusher(self) -> Flusher | None:
        """Replay at once what a dead process on this node accepted but did not upload;
        in write-behind mode, flush every interval."""
        adopted, damaged = self._local.journal.adopt_orphans()
        if damaged:
            self._report(
                ObjectStoreError(
                    f"{damaged} damaged record(s) in this node's write-behind journal were "
                    "skipped (see the log); every intact record is uploaded."
                )
            )
        interval = self.settings.persistence_interval_seconds
        if interval <= 0 and not adopted:
            return None
        flusher = Flusher(self._flush_step, self._report, interval, replay_only=interval <= 0)
        flusher.start()
        return flusher

    def _flush_step(self, replay_only: bool) -> None:
        """One round of the background flusher: pending uploads; unless only replaying,
        also the local files that stopped changing and the quota lease's renewal."""
        parts = self.parts
        parts.writer.upload_pending()
        if not replay_only:
            parts.writer.sync_files(settle_interval=self.settings.persistence_interval_seconds)
            parts.quota.renew(when_due=True)

    # -- the parts that talk to the bucket ---------------------------------------------------

    def connection(self) -> Backend:
        """The backend on the configured bucket (the embedded server starts if it is used)."""
        self._here()
        if self._backend is None:
            from .connect import open_backend

            self._backend = open_backend(self.settings)
            self._opened_backend = True
        return self._backend

    @property
    def parts(self) -> Parts:
        self._here()
        parts = self._parts
        if parts is not None:
            return parts
        with self._parts_lock:
            if self._parts is None:
                self._parts = self._assemble()
            return self._parts

    def _assemble(self) -> Parts:
        s, space, bucket = self.settings, self.space, self.connection()
        objects = bucket.scoped(space.root)
        records = bucket.scoped(space.internal_root)
        quota = Quota(
            records,
            objects,
            s.storage_limit_bytes,
            s.storage_file_count,
            enforcement=s.quota_enforcement,
            # How long a write may take in the worst case: a lease must outlive it.
            grace=s.max_attempts * (s.connect_timeout_seconds + s.read_timeout_seconds) + 10,
            shelf=self._books(),
        )
        quota.adopt(self.local.journal.adopted_leases)
        local = self.local
        view = NodeView(
            local.journal,
            local.states,
            local.files,
            local.cache,
            objects,
            revalidate=s.cache_revalidate,
            max_age=s.cache_max_age_seconds,
            is_key=space.is_key,
        )
        committer = Committer(
            objects,
            quota,
            conditional=lambda: conditional_writes(records, s.quota_enforcement),
            records=records,
            retention=self.retention,
        )
        mode = WriteBehind if s.persistence_interval_seconds > 0 else WriteThrough
        writer = mode(
            objects, local, view, quota, committer, self._report, concurrency=s.max_concurrency
        )
        copies = Copies(writer, conditional_copy=lambda: probe(records).conditional_copy)
        return Parts(objects, quota, view, writer, copies)

    def _books(self) -> NodeShelf | None:
        """The lease's books: the node's, shared by its processes (docs/quotas.md)."""
        s, space = self.settings, self._namespace  # (a backend passed in: "memory")
        limits = (str(s.storage_limit_bytes), str(s.storage_file_count), s.quota_enforcement)
        return None if space[0] == "memory" else NodeShelf.of_node(s.cache_dir, *space, *limits)

    @property
    def retention(self) -> Retention:
        """The noncurrent versions a key keeps on a versioned bucket (the settings)."""
        return Retention(self.settings.keep_versions, self.settings.keep_versions_days)

    def reconcile(self, abort_uploads_older_than: float) -> Usage:
        """Recount the organization's usage into the ledger, and abort its incomplete
        multipart uploads older than the given age (killed sync-backs leave them). On a
        versioned bucket (asked anew), the versions beyond retention are pruned first:
        the recount then lists what remains."""
        parts = self.parts
        if parts.quota.book.versioning.refresh() != "off":
            now = parts.objects.server_time()
            self.retention.prune_all(parts.objects, now[0] if now else time.time())
        used = parts.quota.reconcile()
        now = parts.objects.server_time()
        parts.writer.committer.tombstones.prune(now[0] if now else time.time())
        cutoff = (now[0] if now else time.time()) - abort_uploads_older_than
        stale = list(parts.objects.stale_uploads(cutoff))
        for upload in stale:
            parts.objects.abort_upload(upload)
        if stale:
            log.info(
                "Aborted %d incomplete multipart upload(s) older than %.0f s",
                len(stale),
                abort_uploads_older_than,
            )
        return used

    # -- lifecycle -------------------------------------------------------------------------

    def flush(self, *, settle: bool = True) -> None:
        """Upload pending work and changed local files, and settle usage (see the store)."""
        self._here()
        idle = not self.local.journal and not self.local.states.registered_keys()
        if self._parts is None and idle:
            return
        self.parts.writer.flush(settle=settle)

    def close(self, *, quiet: bool = False) -> None:
        """Flush, then close every part: the flusher, the quota's lease, the node-local
        state, and the backend if this node opened it (the writer holds nothing open: its
        uploads run in pools that end with each flush). Local files stay. `quiet` (a
        `with` block ended by an exception): a failure is logged, not raised."""
        if quiet:
            try:
                self.close()
            except ObjectStoreError as failed:
                log.error("Object Store could not close cleanly after an error: %s", failed)
            return
        self._here()  # in a forked child: closes the child's own parts, never the parent's
        if self.closed:
            return
        if self._flusher is not None:
            self._flusher.stop()
        try:
            try:
                self.flush(settle=False)  # settled below, where a failure only logs
            finally:
                # Settle what was done even if some of it could not be: the lease stays
                # only for what is still pending (kept for a replay).
                if self._parts is not None:
                    self._release(self._parts.quota)
                    self._parts.quota.close()
        finally:
            self.closed = True
            atexit.unregister(self._exit_hook)
            try:
                self.local.close()  # what could not be uploaded stays for a replay
            finally:
                if self._opened_backend and self._backend is not None:
                    self._backend.close()

    @staticmethod
    def _release(quota: Quota) -> None:
        """Settle usage and release the lease. A failure is logged, not raised: the lease
        expires by itself, and a script's clean end must not become a traceback."""
        try:
            quota.settle(release=True)
        except ObjectStoreError as exc:
            log.warning("Object Store could not release its quota lease (it expires): %s", exc)

    def abandon(self) -> None:
        """Let go of everything without flushing or settling, as a killed process would:
        the journal stays on disk for the next store on the node, the lease in the ledger."""
        self._here()
        if self._flusher is not None:
            self._flusher.stop()
        self.closed = True
        atexit.unregister(self._exit_hook)
        if self._parts is not None:
            self._parts.quota.close()  # not left: the node's other stores bury its flight
        self.local.close()

    def wait_for_replay(self) -> None:
        """Block until a replay of a dead process's journal has run (write-through)."""
        self._here()
        if self._flusher is not None and self.settings.persistence_interval_seconds <= 0:
            self._flusher.join()


def conditional_writes(records: Backend, enforcement: str) -> tuple[bool, bool]:
    """(conditional puts, conditional deletes) the writes may rely on; with exact quotas,
    a server that ignores preconditions is refused with the way out."""
    found = probe(records)
    if enforcement == "best_effort" and records.name not in _warned:
        _warned.add(records.name)
        log.warning(
            "quota_enforcement=best_effort: usage is accounted without a guarantee across "
            "nodes%s; several nodes saving at once can pass the limits.",
            "" if found.conditional_put else " (the server ignores conditional writes)",
        )
    if not found.conditional_put and enforcement == "exact":
        raise ServerCapabilityError(
            f"The S3 server ({records.name}) does not honour conditional writes "
            "(If-None-Match / If-Match on PUT), which exact quotas across nodes need. "
            "Use a server that does (AWS S3, MinIO, Ceph RGW, SeaweedFS), or set "
            "quota_enforcement=best_effort (per-node accounting) or off."
        )
    return found.conditional_put, found.conditional_delete


def _exit_hook(node: Node) -> Callable[[], None]:
    """A hook that closes the node at exit if it is still alive, without keeping it alive,
    and only in the process that opened it (a forked child inherits the hook)."""
    reference = weakref.ref(node)

    def hook() -> None:
        alive = reference()
        if alive is None or alive.owner != os.getpid():
            return
        try:
            alive.close()
        except ObjectStoreError as exc:
            log.error("Object Store could not flush at exit; the journal keeps it: %s", exc)

    return hook


_switch = threading.Lock()  # one thread of a child switches a node to the child's parts
_watching = False


def _child_lock() -> threading.Lock:
    return _switch


def _watch_forks() -> None:
    """Give a forked child a fresh switch lock: a parent thread may hold it at the fork."""
    global _watching
    if _watching:
        return
    _watching = True

    def renew() -> None:
        global _switch
        _switch = threading.Lock()

    os.register_at_fork(after_in_child=renew)


def _register_exit(hook: Callable[[], None]) -> None:
    # Uploads use thread pools, which refuse new work once concurrent.futures' own exit
    # hook has run ("cannot schedule new futures after interpreter shutdown"). Hooks made
    # with threading._register_atexit run before it (in reverse order of registration),
    # so ours is registered there; atexit stays as the fallback.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        with contextlib.suppress(RuntimeError):  # already shutting down
            register(hook)
    atexit.register(hook)
