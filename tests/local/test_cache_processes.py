"""One node cache shared by real processes (issue 18, breaks 2 and 3): a full disk while
caching, a damaged database and a busy cache lock never leave a process reading a value
another process of the node superseded or deleted, and the node keeps one cache.

Each process is a store started with the spawn method on the session's SeaweedFS server,
all on one cache_dir; the test sends it commands over a pipe."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from objectstore_s3 import ObjectStoreSettings
from tests.support.worker import settings_json

pytestmark = pytest.mark.seaweedfs

SPAWN = __import__("multiprocessing").get_context("spawn")
MISSING = "<missing>"


def _serve(settings: str, lock_timeout: float, pipe: Connection) -> None:
    """A process of the node: opens its store, then answers the test's commands."""
    import functools
    import inspect
    import json

    from objectstore_s3 import ObjectStore
    from objectstore_s3.local import state
    from objectstore_s3.local.cache import NodeCache

    if "lock_timeout" in inspect.signature(NodeCache).parameters:
        state.NodeCache = functools.partial(NodeCache, lock_timeout=lock_timeout)  # type: ignore[misc]
    store = ObjectStore(ObjectStoreSettings(**json.loads(settings)))
    gets: list[str] = []
    store._node.parts.objects.on_request(  # type: ignore[attr-defined]
        lambda operation, key: gets.append(key) if operation == "GetObject" else None
    )
    while True:
        command, *args = pipe.recv()
        if command == "stop":
            store.close()
            pipe.send(("ok", None))
            return
        try:
            pipe.send(("ok", _run(store, gets, command, args)))
        except Exception as exc:  # reported to the test, which fails with it
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))


def _run(store: Any, gets: list[str], command: str, args: list[Any]) -> Any:
    from objectstore_s3 import KeyNotFoundError

    if command == "save":
        return store.save(*args)
    if command == "delete":
        return store.delete(*args)
    if command == "read":
        try:
            return store.read(*args)
        except KeyNotFoundError:
            return MISSING
    if command == "contains":
        return store.contains_key(*args)
    if command == "gets":  # GETs of the bucket so far
        return len(gets)
    if command == "settle":
        return store._node.local.cache.settle()
    if command == "disk":
        return _disk(*args)
    raise ValueError(command)


_patched: list[tuple[object, str, object]] = []


def _disk(state: str) -> None:
    """'full': every cache database write fails as on a full disk ('full-file': writing a
    value file fails with ENOSPC); 'free': they work again. In this process only."""
    import errno

    import diskcache

    if state == "free":
        while _patched:
            owner, name, original = _patched.pop()
            setattr(owner, name, original)
        return

    def full(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    if state == "full":
        for name in ("set", "add", "delete"):
            _patched.append((diskcache.Cache, name, getattr(diskcache.Cache, name)))
            setattr(diskcache.Cache, name, full)
        return
    store = diskcache.Disk.store  # under the cache's own Disk

    def no_space(self: object, value: object, read: bool, key: object = None) -> object:
        if isinstance(value, bytes) and len(value) > 256 * 1024:
            raise OSError(errno.ENOSPC, "No space left on device")
        return store(self, value, read, key)  # type: ignore[arg-type]

    _patched.append((diskcache.Disk, "store", store))
    diskcache.Disk.store = no_space


class Process:
    """The test's handle on one process of the node."""

    def __init__(self, settings: ObjectStoreSettings, lock_timeout: float) -> None:
        self.pipe, child = SPAWN.Pipe()
        self.process = SPAWN.Process(
            target=_serve, args=(settings_json(settings), lock_timeout, child), daemon=True
        )
        self.process.start()

    def __call__(self, command: str, *args: Any) -> Any:
        self.pipe.send((command, *args))
        if not self.pipe.poll(120):
            raise AssertionError(f"no answer to {command}{args}")
        status, value = self.pipe.recv()
        assert status == "ok", value
        return value

    def cached_read(self, key: str) -> Any:
        """The key's value, which must come from the node cache (no GET)."""
        before = self("gets")
        value = self("read", key)
        assert self("gets") == before, f"'{key}' was not served by the node cache"
        return value

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(Exception):
                self("stop")
        self.process.join(30)
        if self.process.is_alive():
            self.process.kill()  # by its own handle (its PID), never by name
            self.process.join(10)


class Node:
    """Processes of one node: `start()` runs one more on its cache_dir."""

    def __init__(self, settings: ObjectStoreSettings) -> None:
        self.settings = settings
        self.cache = settings.cache_dir / "cache"
        self.processes: list[Process] = []

    def start(self, lock_timeout: float = 5.0) -> Process:
        self.processes.append(Process(self.settings, lock_timeout))
        return self.processes[-1]

    def live_epochs(self) -> list[str]:
        return [path.name for path in self.cache.glob("marks.*") if path.is_dir()]


@pytest.fixture
def node(seaweed_settings: Callable[..., ObjectStoreSettings]) -> Iterator[Node]:
    started = Node(seaweed_settings())
    yield started
    for process in started.processes:
        process.stop()


@pytest.mark.parametrize(("failure", "size"), [("full", 4), ("full-file", 300 * 1024)])
def test_a_full_disk_while_caching_is_a_miss_and_the_node_keeps_one_cache(
    node: Node, failure: str, size: int
) -> None:
    """Issue 18 break 2: a process whose cache writes failed (a full disk) deleted
    cache.db and opened a new one; the node's other processes kept the old file, read v1
    after v2 was saved, and contains_key was True for a deleted key."""
    writer, reader = node.start(), node.start()
    v1, v2, v3, v4 = ("1" * size, "2" * size, "3" * size, "4" * size)
    writer("save", "k", v1)
    writer("save", "d", "doomed")
    assert (reader("read", "k"), reader("read", "d")) == (v1, "doomed")
    reader("settle")
    assert reader.cached_read("k") == v1
    writer("disk", failure)
    writer("save", "k", v2)  # the save succeeds: caching it is optional
    writer("delete", "d")
    assert reader("read", "k") == v2
    assert writer("read", "k") == v2
    assert reader("contains", "d") is False
    assert reader("read", "d") == MISSING
    writer("disk", "free")
    writer("save", "shared", "one cache")
    assert reader.cached_read("shared") == "one cache"  # written by the writer, no GET
    writer("save", "k", v3)
    writer("save", "k", v4)
    assert reader.cached_read("k") == v4
    reader("save", "back", "from the reader")
    assert writer.cached_read("back") == "from the reader"
    assert len(node.live_epochs()) == 1


def test_a_damaged_cache_moves_every_process_to_the_same_new_cache(
    node: Node,
) -> None:
    """Issue 18 break 2: real damage is repaired so that every process of the node uses
    the repaired cache, and no process serves a value superseded meanwhile."""
    one, two = node.start(), node.start()
    one("save", "k", "v1")
    assert two("read", "k") == "v1"
    two("settle")
    assert two.cached_read("k") == "v1"
    cache = node.cache
    with contextlib.closing(sqlite3.connect(cache / "cache.db")) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    for name in ("cache.db", "cache.db-shm"):  # garbage over the open files, as a bad disk
        with open(cache / name, "r+b") as damaged:
            damaged.write(os.urandom((cache / name).stat().st_size))
    one("save", "k", "v2")
    assert two("read", "k") == "v2"
    assert one("read", "k") == "v2"
    one("save", "after", "repaired")
    assert two.cached_read("after") == "repaired"  # one new cache for both
    two("save", "k", "v3")
    assert one.cached_read("k") == "v3"
    assert len(node.live_epochs()) == 1


@contextlib.contextmanager
def _lock_held(cache: Path) -> Iterator[None]:
    """Another process holds the cache database's write lock until the block ends."""
    ours, theirs = SPAWN.Pipe()
    holder = SPAWN.Process(target=_hold_lock, args=(str(cache / "cache.db"), theirs))
    holder.start()
    try:
        assert ours.poll(60), "the lock holder did not start"
        assert ours.recv() == "held"
        yield
    finally:
        ours.send("release")
        holder.join(30)


def _hold_lock(database: str, pipe: Connection) -> None:
    con = sqlite3.connect(database, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    pipe.send("held")
    pipe.recv()
    con.execute("ROLLBACK")
    con.close()


def test_a_busy_cache_lock_never_leaves_a_saved_or_deleted_key_stale(
    node: Node,
) -> None:
    """Issue 18 break 3: while another process held the cache lock past its timeout, the
    update after a save or delete the bucket accepted was skipped, and the process that
    saved v2 read v1, and read a key it had deleted."""
    writer, reader = node.start(lock_timeout=0.3), node.start(lock_timeout=0.3)
    writer("save", "k", "v1")
    writer("save", "d", "doomed")
    for process in (writer, reader):
        assert (process("read", "k"), process("read", "d")) == ("v1", "doomed")
        process("settle")
    assert reader.cached_read("k") == "v1"
    with _lock_held(node.cache):
        writer("save", "k", "v2")
        writer("delete", "d")
        for process in (writer, reader):
            assert process("read", "k") == "v2"
            assert process("read", "d") == MISSING
            assert process("contains", "d") is False
            process("settle")
        assert writer("read", "k") == "v2"
        assert reader("read", "k") == "v2"
    writer("save", "k", "v3")  # the lock is free again: caching resumes
    assert reader.cached_read("k") == "v3"
    assert reader("read", "d") == MISSING
