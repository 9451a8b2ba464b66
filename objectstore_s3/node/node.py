"""The parts of a store that talk to the bucket, and how they are put together.

Built on the first operation that needs the bucket (so constructing a store does no
network I/O): the organization's scope of the backend, its quota, the node view, and the
writer of the configured mode. Also the exit hook, which flushes a store that was never
closed before the interpreter's thread pools stop taking work.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401  (its exit hook must be registered before ours)
import contextlib
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from objectstore_s3.errors import ObjectStoreError, ServerCapabilityError
from objectstore_s3.fs import check_private
from objectstore_s3.keys import KeySpace
from objectstore_s3.local.cache import NodeCache, namespace_of
from objectstore_s3.local.files import LocalFiles
from objectstore_s3.local.journal import Journal
from objectstore_s3.quota.transaction import Quota
from objectstore_s3.settings import ObjectStoreSettings
from objectstore_s3.transport.base import Backend
from objectstore_s3.transport.capability import probe

from .commit import Committer
from .view import NodeView
from .writer import WriteBehind, Writer, WriteThrough

if TYPE_CHECKING:
    from objectstore_s3.store import ObjectStore

__all__ = ["Parts", "assemble", "exit_hook", "node_parts", "register_exit"]

log = logging.getLogger("objectstore_s3")

_warned: set[str] = set()  # buckets whose best-effort quotas were announced


@dataclass
class Parts:
    objects: Backend
    quota: Quota
    view: NodeView
    writer: Writer


def node_parts(
    settings: ObjectStoreSettings, *, injected: bool
) -> tuple[NodeCache, Journal, LocalFiles]:
    """The node-local parts (no I/O yet): the cache and journal of this store's namespace
    (endpoint, bucket, prefix, organization), and the organization's local files."""
    s = settings
    # A folder another local user could write into is refused before anything in it is
    # read: a planted journal segment would be uploaded with this user's credentials.
    for folder, what in (
        (s.cache_dir, "cache_dir"),
        (s.cache_dir / "cache", "node cache folder"),
        (s.cache_dir / "journal", "journal folder"),
        (s.cache_dir / "files", "local-file records folder"),
    ):
        if folder.exists():
            check_private(folder, what)
    where = s.endpoint_url if s.endpoint_url != "local" else f"local:{s.server_dir}"
    namespace = namespace_of("memory" if injected else where, s.bucket, s.prefix, s.organization_id)
    return (
        NodeCache(s.cache_dir / "cache", namespace, s.cache_size_limit),
        Journal(s.cache_dir / "journal" / namespace, fsync=s.journal_fsync),
        LocalFiles(s.local_root / s.organization_id, s.cache_dir / "files"),
    )


def assemble(
    settings: ObjectStoreSettings,
    bucket: Backend,
    space: KeySpace,
    journal: Journal,
    files: LocalFiles,
    cache: NodeCache,
    report: Callable[[ObjectStoreError], None],
) -> Parts:
    s = settings
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
    )
    view = NodeView(
        journal,
        files,
        cache,
        objects,
        revalidate=s.cache_revalidate,
        max_age=s.cache_max_age_seconds,
        is_key=space.is_key,
    )
    committer = Committer(
        objects, quota, conditional=lambda: conditional_writes(records, s.quota_enforcement)
    )
    mode = WriteBehind if s.persistence_interval_seconds > 0 else WriteThrough
    writer = mode(objects, view, quota, committer, report, concurrency=s.max_concurrency)
    return Parts(objects, quota, view, writer)


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


def exit_hook(store: ObjectStore) -> Callable[[], None]:
    """A hook that closes the store at exit if it is still alive, without keeping it alive."""
    reference = weakref.ref(store)

    def hook() -> None:
        alive = reference()
        if alive is not None:
            try:
                alive.close()
            except ObjectStoreError as exc:
                log.error("Object Store could not flush at exit; the journal keeps it: %s", exc)

    return hook


def register_exit(hook: Callable[[], None]) -> None:
    # Uploads use thread pools, which refuse new work once concurrent.futures' own exit
    # hook has run ("cannot schedule new futures after interpreter shutdown"). Hooks made
    # with threading._register_atexit run before it (in reverse order of registration),
    # so ours is registered there; atexit stays as the fallback.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        with contextlib.suppress(RuntimeError):  # already shutting down
            register(hook)
    atexit.register(hook)
