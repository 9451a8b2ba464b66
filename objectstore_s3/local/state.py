"""A node's local state for one store: its cache, journal and local files, opened together.

The folders are checked before anything in them is read: a folder another local user
could write into is refused, since a planted journal segment would be uploaded with this
user's credentials. The cache and the journal are per namespace (endpoint, bucket, prefix,
organization), so stores of two organizations on one node never see each other's entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from objectstore_s3.fs import check_private

from .cache import NodeCache, namespace_of
from .files import LocalFiles
from .filestate import FileStates
from .journal import Journal

__all__ = ["LocalState", "open_local_state"]


@dataclass(frozen=True)
class LocalState:
    """The node-local parts of one store; `close()` lets go of the journal and the cache
    (what could not be uploaded stays in the journal for a replay; local files stay)."""

    cache: NodeCache
    journal: Journal
    states: FileStates
    files: LocalFiles

    def close(self) -> None:
        try:
            self.journal.close()
        finally:
            self.cache.close()


def open_local_state(
    cache_dir: Path,
    local_root: Path,
    namespace: tuple[str, ...],
    *,
    cache_size_limit: int,
    journal_fsync: bool,
) -> LocalState:
    """The cache and journal of `namespace` under `cache_dir`, and the local files under
    `local_root` (no I/O beyond the folder checks)."""
    for folder, what in (
        (cache_dir, "cache_dir"),
        (cache_dir / "cache", "node cache folder"),
        (cache_dir / "journal", "journal folder"),
        (cache_dir / "files", "local-file records folder"),
    ):
        if folder.exists():
            check_private(folder, what)
    name = namespace_of(*namespace)
    states = FileStates(local_root, cache_dir / "files")
    return LocalState(
        NodeCache(cache_dir / "cache", name, cache_size_limit),
        Journal(cache_dir / "journal" / name, fsync=journal_fsync),
        states,
        LocalFiles(states),
    )
