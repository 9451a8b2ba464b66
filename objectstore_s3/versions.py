"""Versions and server-side copies: `history`, `restore`, `copy`, and the read-only file
of an earlier version that `get_file_path(key, version=...)` gives. (Reading an earlier
version's value is `read*(key, version=...)`, in values.py.)

On a bucket with versioning on, every save keeps the value it replaces as a noncurrent
version and a delete leaves a delete marker, so an overwrite or a delete can be undone:
`restore(key, version)` makes an earlier version current again, conditional on the
current one (a concurrent newer write is never overwritten: PreconditionFailedError).
Without versioning, `history` lists the current object only (version "null") and
`restore` raises VersioningNotEnabledError saying how to turn versioning on. Like the
typed values, each public method validates and then makes one call into the node's parts.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .lean import KeyVersion, ObjectStat
from .node.view import Listed
from .objects import WholeObjects, stat_of
from .transport.base import ObjectInfo, Progress, VersionInfo

__all__ = ["VersionedValues"]


class VersionedValues(WholeObjects):
    """A key's versions: list them, restore one, copy a key server-side."""

    def history(self, key: str) -> list[KeyVersion]:
        """The key's versions, newest first: version id, size, last modified, ETag,
        whether it is the current one, and deletions (delete markers: `deleted`, no
        ETag). Without versioning, only the current object (version "null"); [] for a
        key that never existed. This node's pending saves of the key are written first."""
        name = self._key(key)
        self._require("read")
        return [_version_of(item) for item in self._parts.copies.history(name)]

    def restore(self, key: str, version: str) -> ObjectStat:
        """Make an earlier version (from `history`) the key's current value again, by a
        server-side copy; a deleted key is undeleted. Conditional on the current
        version: if another writer changes the key meanwhile, nothing is overwritten and
        PreconditionFailedError names its current ETag. Counted by the quota like a save;
        written through in write-behind mode too. VersioningNotEnabledError on a bucket
        without versioning; KeyNotFoundError for a version that is gone or a deletion."""
        name = self._key(key)
        self._require("read")
        self._require("write")
        if not isinstance(version, str) or not version:
            raise TypeError(f"restore() takes a version id from history(key), not {version!r}")
        return _stat_of(self._parts.copies.restore(name, version))

    def copy(self, source: str, key: str) -> ObjectStat:
        """Copy the current value of `source` to `key` on the server (no bytes through
        this machine), written as a save of `key` would be: conditional on what this
        node knows of `key`, counted by the quota, written through in either mode.
        KeyNotFoundError if `source` does not exist. Works with or without versioning."""
        source_name, name = self._key(source), self._key(key)
        self._require("read")
        self._require("write")
        return _stat_of(self._parts.copies.copy(source_name, name))

    def _version_file(self, key: str, version: str, progress: Progress | None = None) -> str:
        """`get_file_path(key, version=...)`: a read-only (0400) file of that version,
        beside the key's own, never synced back (only reading is needed)."""
        self._require("read")
        return str(self._parts.view.versions.file(key, version, progress))


def _version_of(item: VersionInfo) -> KeyVersion:
    when = None if item.last_modified is None else datetime.fromtimestamp(item.last_modified, UTC)
    return KeyVersion(
        item.key, item.version_id, item.size, item.etag, when, item.latest, item.deleted
    )


def _stat_of(info: ObjectInfo) -> ObjectStat:
    return stat_of(Listed(info.key, info.size, info.etag, info.last_modified))
