"""LEAN's shapes of the API: the values it returns and its C#-style generic calls.

`store.ReadJson[T](key)` calls `read_json(key, type_=T)`; `KeyValuePair` has LEAN's
`.Key/.Value` beside `.key/.value`. The PascalCase method aliases themselves sit in
`ObjectStore`, next to the methods they name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

__all__ = [
    "Generic_",
    "KeyValuePair",
    "KeyVersion",
    "LedgerHealth",
    "NodeStatus",
    "ObjectStat",
    "StorageUsage",
]

R = TypeVar("R")

PERMISSION_MESSAGES = {
    "read": "The current user does not have permission to read from the organization Object "
    "Store. Please contact your organization administrator to request permission.",
    "write": "The current user does not have permission to write to the organization Object "
    "Store. Please contact your organization administrator to request permission.",
    "delete": "The current user does not have permission to delete objects from the "
    "organization Object Store. Please contact your organization administrator to request "
    "permission.",
}


class KeyValuePair(NamedTuple):
    """One stored object during iteration; `.key/.value` and LEAN's `.Key/.Value`."""

    key: str
    value: bytes | None

    @property
    def Key(self) -> str:
        return self.key

    @property
    def Value(self) -> bytes | None:
        return self.value


class ObjectStat(NamedTuple):
    """What `stat` and `list_objects` tell about a key (etag is None while pending)."""

    key: str
    size: int
    etag: str | None
    last_modified: datetime | None


class KeyVersion(NamedTuple):
    """One version of a key, as `history` lists them (newest first). `deleted`: a
    deletion (a delete marker: size 0, no ETag). `version_id` is "null" for what was
    written while the bucket's versioning was off (on a bucket without versioning, the
    current object is its one version, "null")."""

    key: str
    version_id: str
    size: int
    etag: str | None
    last_modified: datetime | None
    is_current: bool
    deleted: bool


class StorageUsage(NamedTuple):
    bytes: int
    files: int
    max_size: int
    max_files: int


class LedgerHealth(NamedTuple):
    """The usage ledger as `ledger_health` reads it (one GET, no listing). `files`/`bytes`:
    committed usage; `leases` live stores each reserve room they save into without asking
    (`reserved_*`: the room of every lease and hold); `holds`: room kept for the journals
    of stopped processes; `maybe_*`: writes whose answer was lost, counted until
    `maybe_until`; `drift`: the ledger knows it over-counts and a recount is due;
    `last_recount`: when the ledger was last recounted from a listing (None: never)."""

    files: int
    bytes: int
    leases: int
    holds: int
    reserved_files: int
    reserved_bytes: int
    maybe_writes: int
    maybe_files: int
    maybe_bytes: int
    maybe_until: datetime | None
    drift: bool
    last_recount: datetime | None


class NodeStatus(NamedTuple):
    """This node's local state as `node_status` reads it (no request). The cache is the
    node's, shared by every store on it; hits and misses are this process's reads since
    it opened the store; `pending_*` is write-behind work not in the bucket yet;
    `unsaved` the keys whose local file (`get_file_path`) has changes not uploaded."""

    cache_bytes: int
    cache_entries: int
    cache_hits: int
    cache_misses: int
    pending_writes: int
    pending_deletes: int
    pending_bytes: int
    unsaved: tuple[str, ...]


class Generic_(Generic[R]):
    """Makes `store.ReadJson[T](key)` call `read_json(key, type_=T)`."""

    def __init__(self, method: Callable[..., R]) -> None:
        self._method = method
        self.__doc__ = method.__doc__

    def __get__(self, instance: Any, owner: type | None = None) -> _BoundGeneric[R]:
        return _BoundGeneric(self._method, instance)


class _BoundGeneric(Generic[R]):
    def __init__(self, method: Callable[..., R], instance: Any) -> None:
        self._method = method
        self._instance = instance

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        return self._method(self._instance, *args, **kwargs)

    def __getitem__(self, type_: Any) -> Callable[..., R]:
        return functools.partial(self._method, self._instance, type_=type_)
