"""A small reference model of the Object Store: the organization's side, the bucket as a
dict and the rules across nodes (each node's own state is in node.py).

Its rules restate the SPEC, not the code: last accepted write wins per key; a pending
write gives way to an object another node wrote after it was accepted, and to a delete
another node made after it was accepted (a replay never recreates such a key); a cached key is
seen as it was cached until `clear()`; a local file written since its last sync is the
newest thing a node has for its key; automatic syncs never overwrite an object that
changed since the file's last sync. Values are unique, so "version" and "value" are one.
Used by tests/model/test_model.py, which checks every observation of two real nodes against it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.support.model.node import (
    Clash,
    Conflict,
    FolderRefused,
    LocalFile,
    Missing,
    Node,
    Pending,
)


@dataclass
class Obj:
    value: bytes
    written_at: float  # the server's clock when it was written


class Model:
    """`strict`: the server's clock is the test's, so every "written after" is decided;
    else a decision that hangs on timing is taken from what the bucket shows.
    `folders`: the server keeps folders as entries (SeaweedFS, see `FolderRefused`)."""

    def __init__(self, modes: tuple[str, str], strict: bool = True, folders: bool = False) -> None:
        self.folders = folders
        self.bucket: dict[str, Obj] = {}
        self.deleted: dict[str, float] = {}  # when the store last deleted each key
        self.nodes = [Node(mode) for mode in modes]
        self.now = 0.0
        self.strict = strict

    # -- the bucket ------------------------------------------------------------------------

    def bucket_value(self, key: str) -> bytes | None:
        found = self.bucket.get(key)
        return None if found is None else found.value

    # -- observations ----------------------------------------------------------------------

    def read(self, node: Node, key: str) -> bytes | None:
        kind = node.kind(key)
        if kind == "local":
            return node.disk[key].content
        if kind == "pending_delete":
            raise Missing(key)
        if kind == "pending_put":
            return node.pending[key].value
        if kind == "registered":
            return None
        if kind == "cached":
            return node.cache[key]
        value = self.bucket_value(key)
        if value is None:
            node.cache.pop(key, None)
            if key in node.registered:
                return None
            raise Missing(key)
        node.cache[key] = value
        return value

    def contains(self, node: Node, key: str) -> bool:
        kind = node.kind(key)
        if kind in ("local", "pending_put", "registered", "cached"):
            return True
        if kind == "pending_delete":
            return False
        if key in node.registered:
            return True
        return key in self.bucket

    def keys(self, node: Node) -> list[str]:
        found = set(self.bucket) | node.registered
        for key, pending in node.pending.items():
            if pending.op == "put":
                found.add(key)
            else:
                found.discard(key)
        return sorted(found)

    # -- writes ------------------------------------------------------------------------------

    def _write(self, key: str, value: bytes) -> None:
        self.bucket[key] = Obj(value, self.now)

    def _remove(self, key: str) -> None:
        """A delete the store makes: only one that removed an object is remembered."""
        if self.bucket.pop(key, None) is not None:
            self.deleted[key] = self.now

    def _after_put(self, node: Node, key: str, value: bytes, accepted: bool) -> None:
        node.cache[key] = value
        if key in node.registered:
            local = node.disk.get(key)
            if accepted and local is not None and local.changed:
                local.synced = value  # written after the save was accepted: it stays
            else:
                self._mirror(node, key, LocalFile(value, value, value))

    def _mirror(self, node: Node, key: str, local: LocalFile) -> None:
        """A registered key's file follows its value, unless its place is taken."""
        try:
            node.check_clash(key)
        except Clash:
            node.registered.discard(key)
            return
        node.disk[key] = local

    def save(self, node: Node, key: str, value: bytes) -> None:
        if node.mode == "through":
            self._write(key, value)
            self._after_put(node, key, value, accepted=False)
            return
        node.pending[key] = Pending("put", value, self.now, node.base(key))
        if key in node.registered:
            self._mirror(node, key, LocalFile(value, value, None))

    def update(
        self, node: Node, key: str, suffix: bytes, observe: Callable[[str], bool] | None = None
    ) -> bytes:
        """A read-modify-write appending `suffix`: the node's pending work on the key goes
        first, then the bucket's value (never a cached one) gets the suffix exactly once,
        written through in both modes."""
        pending = node.pending.pop(key, None)
        if pending is not None:
            self._apply(node, key, pending, observe)
        current = self.bucket_value(key)
        if current is None and self.folders and any(k.startswith(key + "/") for k in self.bucket):
            raise FolderRefused(key)
        value = (current or b"") + suffix
        self._write(key, value)
        self._after_put(node, key, value, accepted=False)
        return value

    def delete(self, node: Node, key: str) -> None:
        exists, base = self._presence(node, key)
        if not exists:
            raise Missing(key)
        if node.mode == "through":
            self._remove(key)
        else:
            node.pending[key] = Pending("delete", None, self.now, base)
        node.cache.pop(key, None)
        node.registered.discard(key)
        node.disk.pop(key, None)

    def _presence(self, node: Node, key: str) -> tuple[bool, bytes | str | None]:
        kind = node.kind(key)
        registered = key in node.registered
        if kind in ("pending_put", "pending_delete"):
            return kind == "pending_put" or registered, node.pending[key].base
        if kind == "cached":
            return True, node.cache[key]
        value = self.bucket_value(key)
        if value is None:
            node.cache.pop(key, None)
            return registered, None
        return True, value

    # -- local files ---------------------------------------------------------------------------

    def get_file_path(self, node: Node, key: str) -> None:
        node.check_clash(key)
        kind = node.kind(key)
        if kind == "registered":
            return
        if kind == "pending_put":
            value = node.pending[key].value
            node.disk[key] = LocalFile(value, value, None)
            node.registered.add(key)
            return
        if kind == "pending_delete":
            node.start_empty(key)
            return
        value = self.bucket_value(key)
        if value is None:
            if kind == "local":
                return
            node.start_empty(key)
            return
        local = node.disk.get(key)
        if local is not None and local.recorded is not None and local.content is not None:
            if local.synced == value:
                node.registered.add(key)
                return
            if local.changed:
                raise Conflict(key)
        elif local is not None and local.content is not None and key in node.registered:
            raise Conflict(key)
        node.disk[key] = LocalFile(value, value, value)
        node.registered.add(key)
        if key in node.cache and node.cache[key] != value:
            node.cache.pop(key)

    def write_file(self, node: Node, key: str, value: bytes) -> None:
        node.write_file(key, value)

    def save_file(self, node: Node, key: str) -> None:
        local = node.disk[key]
        assert local.content is not None
        self._write(key, local.content)
        node.cache.pop(key, None)
        node.disk[key] = LocalFile(local.content, local.content, local.content)
        node.pending.pop(key, None)

    # -- flushing ------------------------------------------------------------------------------

    def flush(self, node: Node, observe: Callable[[str], bool] | None = None) -> None:
        """Apply the node's pending work and sync its changed files. `observe(key)` tells
        (when not strict) whether the store dropped the key's pending work."""
        for key, pending in sorted(node.pending.items(), key=lambda item: item[1].accepted_at):
            self._apply(node, key, pending, observe)
        node.pending.clear()
        for key in sorted(node.registered):
            local = node.disk.get(key)
            if local is None or not local.changed:
                continue
            if self.bucket_value(key) == local.synced and (
                local.synced is not None or key not in self.bucket
            ):
                assert local.content is not None
                self._write(key, local.content)
                node.cache.pop(key, None)
                node.disk[key] = LocalFile(local.content, local.content, local.content)
            else:
                node.conflicts += 1

    def _apply(
        self, node: Node, key: str, pending: Pending, observe: Callable[[str], bool] | None
    ) -> None:
        current = self.bucket.get(key)
        matches = (current is None and pending.base is None) or (
            current is not None and current.value == pending.base
        )
        # A key absent now was deleted after the save was accepted, if the store's last
        # delete of it came later: the pending save gives way (a pending delete has nothing
        # left to do either way).
        deleted = self.deleted.get(key)
        gone = current is None and pending.op == "put" and deleted is not None
        if (not matches and current is not None) or gone:
            when = current.written_at if current is not None else deleted
            assert when is not None
            # Within the server's clock resolution (not strict) either outcome is right; the
            # store says which it took, and the bucket is checked against that at the end.
            exact = self.strict or observe is None
            newer = when > pending.accepted_at if exact or observe is None else observe(key)
            if newer:
                node.dropped += 1
                node.cache.pop(key, None)
                return
        if pending.op == "put":
            assert pending.value is not None
            self._write(key, pending.value)
            self._after_put(node, key, pending.value, accepted=True)
        else:
            self._remove(key)
            node.cache.pop(key, None)

    def clear(self, node: Node) -> None:
        self.flush(node)
        node.cache.clear()

    def close(self, node: Node) -> None:
        self.flush(node)
        node.registered.clear()

    def crash(self, node: Node) -> None:
        node.registered.clear()
