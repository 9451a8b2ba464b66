"""A byte range of a key's value, read without fetching the whole value: what the
console's preview of a large object needs (at most 1 MiB of a 1 GiB object).

The node's own newer value (a changed local file, pending write-behind work) is sliced
where it is; a value cached whole and no larger than the range comes from the cache;
otherwise the bucket's object is read with one ranged GET pinned to its ETag (a HEAD
first gives the size and the ETag). A transport without ranged GETs (the in-memory
backend, whose objects are in memory already) slices a whole GET.
"""

from __future__ import annotations

import os
import tempfile

from objectstore_s3.errors import KeyNotFoundError

from .node import Parts

__all__ = ["read_range"]


def read_range(parts: Parts, key: str, start: int, end: int) -> bytes:
    """Bytes `start`..`end`-1 of the key's value as this node sees it (fewer at its
    end, none past it); KeyNotFoundError if the key does not exist."""
    if start < 0 or end < start:
        raise ValueError(f"a range needs 0 <= start <= end, not {start}..{end}")
    view = parts.view
    state = view.state(key)
    small = state.cached is not None and state.cached.size <= end - start
    if state.kind not in ("cached", "unknown") or (state.kind == "cached" and small):
        return (view.read(key) or b"")[start:end]
    info = parts.objects.head(key)
    if info is None:
        raise KeyNotFoundError(key)
    end = min(end, info.size)
    if end <= start:
        return b""
    ranged = getattr(parts.objects, "get_range_into", None)  # transfer.RangeClient
    if ranged is None or info.etag is None:
        data = parts.objects.get(key)
        return b"" if data is None else data.body[start:end]
    with tempfile.TemporaryFile() as handle:
        # The part is written at its own offsets (a sparse file: nothing before `start`).
        ranged(key, start, end, info.etag, handle.fileno())
        return os.pread(handle.fileno(), end - start, start)
