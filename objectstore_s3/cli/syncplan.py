"""What `objectstore-s3 sync` transfers and deletes, from two listings. Pure: no I/O.

A listing maps relative names (`a/b.bin`, the same on both sides) to entries: size, the
server's ETag on the store's side, the modification time. A name is transferred when the
target lacks it or holds other content: another size, or, for an object stored in one
part, another MD5 (its ETag is the MD5 of its bytes; the local file's MD5 is computed
only when the sizes agree). A multipart ETag is not an MD5 of the content, so there the
source is transferred when it is newer than the target (a download sets the local file's
time to the object's, so a second sync transfers nothing); `aws s3 sync` does the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["Entry", "SyncPlan", "differs", "is_md5", "plan"]

# Times within this many seconds are the same time: S3 keeps whole seconds.
MTIME_TOLERANCE = 1.0
_MD5 = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Entry:
    """One side's file or object: `etag` (unquoted) is the server's, None for a local
    file; `mtime` in seconds since 1970 (None when unknown, e.g. a pending write)."""

    size: int
    etag: str | None = None
    mtime: float | None = None


@dataclass(frozen=True)
class SyncPlan:
    """The names to transfer from the source and to delete from the target (sorted), and
    how many names are already the same on both sides."""

    transfer: tuple[str, ...]
    delete: tuple[str, ...]
    unchanged: int


def is_md5(etag: str | None) -> bool:
    """Whether an ETag is the MD5 of the content (a single-part upload's)."""
    return etag is not None and _MD5.fullmatch(etag.strip('"').lower()) is not None


def differs(name: str, source: Entry, target: Entry, digest: Callable[[str], str]) -> bool:
    """Whether the target's copy of `name` differs from the source's. `digest(name)` is the
    local file's MD5 (hex), asked for only when an MD5 comparison can decide."""
    if source.size != target.size:
        return True
    etags = [entry.etag.strip('"').lower() for entry in (source, target) if entry.etag]
    if len(etags) == 2 and etags[0] == etags[1]:
        return False  # the same object on both sides (not a local file)
    if len(etags) == 1 and is_md5(etags[0]):
        return digest(name).lower() != etags[0]
    if source.mtime is None or target.mtime is None:
        return False  # same size and nothing better to go by
    return source.mtime > target.mtime + MTIME_TOLERANCE


def plan(
    source: Mapping[str, Entry],
    target: Mapping[str, Entry],
    *,
    delete: bool,
    digest: Callable[[str], str],
) -> SyncPlan:
    """What makes the target hold what the source holds: transfer what it lacks or holds
    differently; with `delete`, remove what the source lacks."""
    transfer = [
        name
        for name in sorted(source)
        if name not in target or differs(name, source[name], target[name], digest)
    ]
    removed = sorted(name for name in target if name not in source) if delete else []
    return SyncPlan(tuple(transfer), tuple(removed), len(source) - len(transfer))
