"""The reference model's per-node state (tests/support/model/): what a node holds (pending
write-behind work, cache, registered keys, files on disk) and what it can tell of a key from
that alone; the bucket and the rules across nodes are the organization's (organization.py).
Also the exceptions the model raises where the store raises its errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Pending:
    op: str  # "put" | "delete"
    value: bytes | None
    accepted_at: float
    base: bytes | str | None  # expected bucket value; None: absent; "?": unknown


@dataclass
class LocalFile:
    content: bytes | None  # None: no file on disk
    recorded: bytes | None  # content at the last record (None: never recorded)
    synced: bytes | None  # the bucket value the record matches (None: none)

    @property
    def changed(self) -> bool:
        return self.content is not None and self.content != self.recorded


@dataclass
class Node:
    """One node's own state: its pending write-behind work, cache, registered keys and
    files on disk; and what it knows of a key from them alone (no bucket involved)."""

    mode: str  # "through" | "behind"
    pending: dict[str, Pending] = field(default_factory=dict)
    cache: dict[str, bytes] = field(default_factory=dict)
    registered: set[str] = field(default_factory=set)
    disk: dict[str, LocalFile] = field(default_factory=dict)
    conflicts: int = 0
    dropped: int = 0

    def kind(self, key: str) -> str:
        local = self.disk.get(key)
        if key in self.registered and local is not None and local.changed:
            return "local"
        if (
            key in self.registered
            and (local is None or local.recorded is None)
            and (local is None or local.content is None)
        ):
            return "registered"
        if key in self.pending:
            return "pending_" + self.pending[key].op
        if key in self.cache:
            return "cached"
        return "unknown"

    def base(self, key: str) -> bytes | str | None:
        if key in self.pending:
            return self.pending[key].base
        if key in self.cache:
            return self.cache[key]
        local = self.disk.get(key)
        if key in self.registered and local is not None and local.synced is not None:
            return local.synced
        return "?"

    def check_clash(self, key: str) -> None:
        """`a` and `a/b` cannot both be local files: a key's path clashes with a file at
        a parent's path, or with a folder another key needs (registered, or a file)."""
        with_files = {other for other, local in self.disk.items() if local.content is not None}
        for other in with_files | self.registered:
            if other.startswith(key + "/"):
                raise Clash(key)
            if key.startswith(other + "/") and other in with_files:
                raise Clash(key)

    def start_empty(self, key: str) -> None:
        local = self.disk.get(key)
        if local is not None and local.recorded is not None and not local.changed:
            del self.disk[key]
        self.registered.add(key)

    def write_file(self, key: str, value: bytes) -> None:
        local = self.disk.get(key)
        if local is None:
            self.disk[key] = LocalFile(value, None, None)
        else:
            local.content = value


class Missing(Exception):
    """The model says KeyNotFoundError."""


class Conflict(Exception):
    """The model says LocalFileConflictError."""


class Clash(Exception):
    """The model says LocalPathClashError."""


class FolderRefused(Exception):
    """The model says ServerCapabilityError: a server that keeps folders as entries
    (SeaweedFS) refuses to create 'key' only-if-absent while keys under 'key/' exist."""
