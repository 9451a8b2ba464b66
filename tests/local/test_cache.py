"""The node-local cache: no request on a hit, the documented staleness, clear(),
revalidation, namespacing, no pickles, owner-only, damage that reads as a miss, and (in one
process, two views of one folder) failed updates that never leave a superseded entry valid."""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import shutil
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest.mock import ANY

import diskcache
import pytest

from objectstore_s3 import (
    KeyNotFoundError,
    LocalStorageError,
    ObjectStore,
)
from objectstore_s3.local import cache as cache_module
from objectstore_s3.local.cache import CacheEntry, NodeCache
from objectstore_s3.local.cachedb import NEVER
from tests.conftest import StoreFactory
from tests.support.helpers import requests_of


def test_cached_read_makes_no_request(store: ObjectStore) -> None:
    store.save("k", "v")
    calls = requests_of(store)
    assert store.read("k") == "v"
    assert store.read_bytes("k") == b"v"
    assert store.contains_key("k")
    assert calls == []


def test_write_populates_cache_only_after_the_bucket_accepted(store: ObjectStore) -> None:
    store.save("k", "v")
    entry = store._node.local.cache.get("k")
    assert entry is not None
    assert entry.body == b"v"
    assert entry.etag


def test_two_nodes_stale_read_then_clear(make_store: StoreFactory, tmp_path: Path) -> None:
    node_a = make_store()
    node_b = make_store(cache_dir=tmp_path / "node-b")
    node_a.save("123", "from A")
    assert node_b.read("123") == "from A"
    node_a.save("123", "from B's rival")
    assert node_b.read("123") == "from A"  # the documented cache behaviour
    node_b.clear()
    assert node_b.read("123") == "from B's rival"


def test_revalidation_304_200_404(make_store: StoreFactory, tmp_path: Path) -> None:
    writer = make_store()
    reader = make_store(cache_dir=tmp_path / "reader", cache_revalidate=True)
    writer.save("k", "v1")
    assert reader.read("k") == "v1"
    calls = requests_of(reader)
    assert reader.read("k") == "v1"  # 304: served from the cache
    assert calls == ["GetObject"]
    writer.save("k", "v2")
    assert reader.read("k") == "v2"  # 200: refreshed
    assert reader._node.local.cache.get("k").body == b"v2"  # type: ignore[union-attr]
    writer.delete("k")
    assert reader.contains_key("k") is False  # asks the bucket in this mode
    with pytest.raises(KeyNotFoundError):
        reader.read("k")  # 404: dropped
    assert reader._node.local.cache.get("k") is None


def test_max_age_revalidates_only_old_entries(make_store: StoreFactory, tmp_path: Path) -> None:
    writer = make_store()
    reader = make_store(cache_dir=tmp_path / "reader", cache_max_age_seconds=60)
    writer.save("k", "v1")
    assert reader.read("k") == "v1"
    writer.save("k", "v2")
    calls = requests_of(reader)
    assert reader.read("k") == "v1"  # young entry: trusted, no request
    assert calls == []
    entry = reader._node.local.cache.get("k")
    assert entry is not None
    reader._node.local.cache.store("k", entry.body, entry.etag, validated_at=time.time() - 61)
    assert reader.read("k") == "v2"  # old entry: revalidated
    assert calls == ["GetObject"]
    assert reader.read("k") == "v2"
    assert calls == ["GetObject"]


def test_organizations_do_not_share_entries(make_store: StoreFactory) -> None:
    one = make_store(organization_id="org-c1")
    two = make_store(organization_id="org-c2")  # same cache_dir
    one.save("k", "one")
    with pytest.raises(KeyNotFoundError):
        two.read("k")
    two.save("k2", "two")
    one.clear()
    calls = requests_of(two)
    assert two.read("k2") == "two"
    assert calls == []  # clear() of org one left org two's entries


def test_oversized_value_is_not_cached(make_store: StoreFactory) -> None:
    store = make_store(cache_size_limit=4 * 1024 * 1024)
    big = b"x" * (1024 * 1024 + 1)  # over a quarter of the limit
    store.save_bytes("big", big)
    store.save_bytes("small", b"x" * 100)
    calls = requests_of(store)
    assert store.read_bytes("big") == big
    assert store.read_bytes("small") == b"x" * 100
    assert calls == ["GetObject"]


def test_cache_and_journal_folders_are_owner_only(make_store: StoreFactory) -> None:
    store = make_store(persistence_interval_seconds=3600)
    store.save("k", "v")
    store.read("k")
    store._node.local.cache.store("x", b"x", "etag")
    cache_dir = store.settings.cache_dir
    journal = store._node.local.journal.directory
    for folder in (cache_dir, cache_dir / "cache", cache_dir / "journal", journal):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_buckets_do_not_share_entries(make_store: StoreFactory) -> None:
    one = make_store()
    other_bucket = make_store(bucket="another-bucket")
    one.save("k", "v")
    assert other_bucket._node.local.cache.get("k") is None
    assert one._node.local.cache.namespace != other_bucket._node.local.cache.namespace


class _Explosive:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/objectstore-pwned",))


def test_pickled_entry_is_refused_not_unpickled(store: ObjectStore) -> None:
    store.save("k", "real")
    store._node.local.cache.close()
    marker = Path("/tmp/objectstore-pwned")
    marker.unlink(missing_ok=True)
    with diskcache.Cache(str(store.settings.cache_dir / "cache")) as raw:
        # Pickled by diskcache's default Disk.
        raw.set(store._node.local.cache._slot("k").entry, _Explosive())
        assert pickle.dumps(_Explosive())  # it really is a pickle payload
    assert store.read("k") == "real"
    assert not marker.exists()


def test_damaged_entry_is_a_miss(store: ObjectStore) -> None:
    store.save("k", "real")
    store._node.local.cache.close()
    with diskcache.Cache(str(store.settings.cache_dir / "cache")) as raw:
        blob = raw.get(store._node.local.cache._slot("k").entry)
        raw.set(
            store._node.local.cache._slot("k").entry, bytes(blob[:-1]) + b"X"
        )  # flip the last byte
    assert store.read("k") == "real"


def test_garbage_files_in_cache_folder(store: ObjectStore) -> None:
    store.save("k", "real")
    folder = store.settings.cache_dir / "cache"
    (folder / "garbage.bin").write_bytes(os.urandom(1000))
    (folder / "00").mkdir(exist_ok=True)
    (folder / "00" / "junk.val").write_bytes(b"junk")
    assert store.read("k") == "real"


def test_truncated_database_is_rebuilt(store: ObjectStore) -> None:
    store.save("k", "real")
    store._node.local.cache.close()
    database = store.settings.cache_dir / "cache" / "cache.db"
    database.write_bytes(b"this is not a sqlite database" * 10)
    assert store.read("k") == "real"
    calls = requests_of(store)
    assert store.read("k") == "real"
    assert calls == []  # rebuilt and repopulated


def test_cache_dir_deleted_while_open(store: ObjectStore) -> None:
    store.save("k", "real")
    shutil.rmtree(store.settings.cache_dir)
    assert store.read("k") == "real"
    store.save("k2", "more")
    assert store.read("k2") == "more"
    assert (store.settings.cache_dir / "cache").is_dir()


def test_delete_removes_entry(store: ObjectStore) -> None:
    store.save("k", "v")
    store.delete("k")
    assert store._node.local.cache.get("k") is None


def test_a_revalidation_does_not_put_back_a_value_replaced_meanwhile(tmp_path: Path) -> None:
    """A 304 answers for the old copy; a write that landed meanwhile must stay cached."""
    cache = NodeCache(tmp_path / "cache", "ns", 1 << 20)
    cache.store("k", b"old", "etag-old")
    entry = cache.get("k")
    assert entry is not None
    generation = cache.generation("k")  # a read takes it, then sends If-None-Match
    cache.store("k", b"new", "etag-new")  # another thread's save lands first
    cache.touch("k", entry, generation)  # the read's 304 comes back
    current = cache.get("k")
    assert current is not None
    assert current.body == b"new"
    cache.close()


def test_values_up_to_256_kib_are_kept_inside_the_database(tmp_path: Path) -> None:
    """One SQLite row read, no value file to open: the cached-read path of small values."""
    cache = NodeCache(tmp_path / "cache", "ns", 1 << 30)
    cache.store("small", b"s" * (200 * 1024), "e1")
    cache.store("large", b"l" * (300 * 1024), "e2")
    assert len(list((tmp_path / "cache").rglob("*.val"))) == 1
    meta = cache.meta("small")
    assert meta is not None
    assert meta.size == 200 * 1024
    assert (entry := cache.get("large")) is not None
    assert entry.body == b"l" * (300 * 1024)
    cache.close()


def test_a_fill_behind_a_read_is_served_before_it_lands(store: ObjectStore) -> None:
    store.save("k", "v1")
    store.clear()
    calls = requests_of(store, "k")
    assert store.read("k") == "v1"
    assert store.read("k") == "v1"  # landed or still pending: no second GET either way
    assert calls == ["GetObject"]
    store._node.local.cache.settle()
    assert store._node.local.cache.meta("k") is not None


def test_a_pending_fill_never_shows_a_value_older_than_a_finished_write(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    """Another process on the node (same cache folder) writes after this read's GET."""
    reader = make_store()
    writer = make_store()  # same cache_dir: another process on the node
    writer.save("k", "v1")
    reader.clear()
    cache = reader._node.local.cache
    landed = threading.Event()
    cache._fills._land = lambda key, fill: landed.wait(10)  # type: ignore[method-assign]
    assert reader.read("k") == "v1"  # its fill is held back
    writer.save("k", "v2")  # bumps the key's generation in the shared database
    assert reader.read("k") == "v2"
    landed.set()


def test_writes_and_clear_drop_pending_fills(tmp_path: Path) -> None:
    cache = NodeCache(tmp_path / "cache", "ns", 1 << 20)
    gate = threading.Event()
    land = cache._fills._land
    cache._fills._land = lambda key, fill: (gate.wait(10), land(key, fill))  # type: ignore[method-assign]
    for key in ("a", "b", "c"):
        cache.fill(key, b"old", "e-old", cache.generation(key))
    cache.invalidate("a")
    cache.clear()
    gate.set()
    cache.settle()
    assert [cache.get(key) for key in ("a", "b", "c")] == [None, None, None]
    cache.fill("d", b"d", "e-d", cache.generation("d"))
    cache.close()  # lands what is queued
    assert NodeCache(tmp_path / "cache", "ns", 1 << 20).get("d") == CacheEntry(b"d", "e-d", ANY)


def test_the_cache_stays_within_its_size_limit(tmp_path: Path) -> None:
    """Culling runs every size_limit/64 stored (not on every set); the bound still holds."""
    limit = 2 * 1024 * 1024
    cache = NodeCache(tmp_path / "cache", "ns", limit)
    for index in range(200):
        cache.store(f"k{index}", bytes([index % 256]) * 32 * 1024, f"e{index}")
    volume = cache._db.open().volume()
    assert volume <= limit * 1.1, volume
    newest = cache.get("k199")
    assert newest is not None
    assert newest.body == bytes([199]) * 32 * 1024  # the newest stay, the oldest go
    assert cache.get("k0") is None
    cache.close()


def test_a_cull_keeps_most_of_what_fits_and_every_generation_stays_valid(tmp_path: Path) -> None:
    """Culling runs after the write's transaction: inside it, SQLite's freed pages do not
    count yet and cull() emptied the whole cache, generation rows included."""
    limit = 4 * 1024 * 1024
    cache = NodeCache(tmp_path / "cache", "ns", limit)
    value = b"v" * 20_000  # inside the database, not a value file
    fewest = 400
    for index in range(400):
        cache.store(f"k{index}", value, f"e{index}")
        if index >= 300 and index % 10 == 0:  # full by now: culls keep happening
            fewest = min(fewest, sum(cache.get(f"k{i}") is not None for i in range(index)))
    assert fewest >= 120, fewest  # about 200 fit; a cull inside the transaction left ~48
    assert cache.get("k399") is not None
    cache.close()


def test_a_generation_taken_before_eviction_never_matches_again(tmp_path: Path) -> None:
    """Generations are tokens: a row evicted and made again cannot equal an old one."""
    cache = NodeCache(tmp_path / "cache", "ns", 1 << 20)
    taken = cache.generation("k")  # a slow read takes it...
    cache.store("k", b"new", "e-new")  # ...a write replaces it...
    with cache._db.lock:
        cache._db.open().delete(cache._slot("k").generation)  # ...and eviction drops the row
    cache.fill("k", b"old", "e-old", taken)  # the slow read's fill comes back
    cache.settle()
    entry = cache.get("k")
    assert entry is None or entry.body == b"new"
    assert cache.generation("k") != taken
    cache.close()


def test_a_newer_fill_that_does_not_fit_the_queue_replaces_the_older_one(tmp_path: Path) -> None:
    cache = NodeCache(tmp_path / "cache", "ns", 1 << 30)
    cache._fills._max_bytes = 1000
    gate = threading.Event()
    land = cache._fills._land
    cache._fills._land = lambda key, fill: (gate.wait(10), land(key, fill))  # type: ignore[method-assign]
    cache.fill("other", b"x" * 500, "e-x", cache.generation("other"))  # queued, held back
    generation = cache.generation("k")
    cache.fill("k", b"o" * 300, "e-old", generation)  # queued too
    cache.fill("k", b"n" * 600, "e-new", generation)  # does not fit the queue: lands now
    entry = cache.get("k")
    assert entry is not None
    assert entry.etag == "e-new"
    gate.set()
    cache.settle()
    entry = cache.get("k")
    assert entry is not None
    assert entry.etag == "e-new"
    cache.close()


@pytest.mark.seaweedfs
def test_contains_key_and_delete_respect_the_cache_max_age(
    stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    node = stores(cache_dir=tmp_path / "aged", cache_max_age_seconds=0.2)
    other = stores(cache_dir=tmp_path / "other")
    node.save("k", "v")
    other.delete("k")
    deadline = time.monotonic() + 10
    while node.contains_key("k") and time.monotonic() < deadline:
        threading.Event().wait(0.05)
    assert not node.contains_key("k")  # the entry aged out: the bucket was asked
    with pytest.raises(KeyNotFoundError):
        node.delete("k")
    with pytest.raises(KeyNotFoundError):
        node.read("k")


def test_rebuilding_a_damaged_cache_removes_only_what_it_made(store: ObjectStore) -> None:
    store.save("k", "real")
    folder = store.settings.cache_dir / "cache"
    mine = folder / "notes.txt"
    mine.write_text("the user's own file")
    store._node.local.cache.close()
    (folder / "cache.db").write_bytes(b"this is not a sqlite database" * 10)
    assert store.read("k") == "real"  # a miss, then the bucket
    assert mine.read_text() == "the user's own file"


def test_a_programming_error_in_the_cache_is_not_taken_for_damage(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save("k", "real")

    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("a bug, not damage")

    monkeypatch.setattr(cache_module, "_parse_header", broken)
    with pytest.raises(TypeError, match="a bug"):
        store.read("k")
    monkeypatch.undo()
    assert (store.settings.cache_dir / "cache" / "cache.db").exists()  # not wiped
    assert store.read("k") == "real"


# -- failed updates: two views of one cache folder, as two processes of a node have ---------


Views = Callable[..., tuple[NodeCache, NodeCache]]


@pytest.fixture
def views(tmp_path: Path) -> Iterator[Views]:
    """`views(lock_timeout=...)`: two NodeCaches on one folder, each with its own database
    connection (closed at the end)."""
    opened: list[NodeCache] = []

    def open_two(lock_timeout: float = 5.0) -> tuple[NodeCache, NodeCache]:
        folder = tmp_path / "cache"
        pair = [NodeCache(folder, "ns", 1 << 24, lock_timeout=lock_timeout) for _ in range(2)]
        opened.extend(pair)
        return pair[0], pair[1]

    yield open_two
    for cache in opened:
        cache.close()


@contextlib.contextmanager
def _lock_held(tmp_path: Path) -> Iterator[None]:
    """Another process holds the database's write lock."""
    holder = sqlite3.connect(tmp_path / "cache" / "cache.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _disk_full(*args: object, **kwargs: object) -> None:
    raise sqlite3.OperationalError("database or disk is full")


def _body(cache: NodeCache, key: str) -> bytes | None:
    entry = cache.get(key)
    return None if entry is None else entry.body


def _live_epochs(tmp_path: Path) -> list[Path]:
    return [path for path in (tmp_path / "cache").glob("marks.*") if path.is_dir()]


def test_a_full_disk_while_caching_leaves_the_key_uncached_in_one_shared_cache(
    tmp_path: Path, views: Views, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18 break 2: a failed cache write made its process start a database of its
    own; the other kept reading the superseded value from the first."""
    one, two = views()
    one.store("k", b"v1", "e1")
    assert _body(two, "k") == b"v1"
    database = (tmp_path / "cache" / "cache.db").stat().st_ino
    full = one._db.open()
    for write in ("set", "add", "delete"):  # even a delete finds no room
        monkeypatch.setattr(full, write, _disk_full)
    one.store("k", b"v2", "e2")  # the bucket took v2: caching it is optional
    assert (_body(one, "k"), _body(two, "k"), two.meta("k")) == (None, None, None)
    generation = two.generation("k")  # a read in the other process forgets the key itself
    assert generation != NEVER
    two.fill("k", b"v2", "e2", generation)  # so the value it fetched is cached at once
    two.settle()
    assert _body(one, "k") == b"v2"
    monkeypatch.undo()  # the disk has room again
    one.store("k", b"v3", "e3")  # resolves the marker: the entry only goes
    one.store("k", b"v4", "e4")
    assert _body(two, "k") == b"v4"
    assert (tmp_path / "cache" / "cache.db").stat().st_ino == database  # never replaced
    assert len(_live_epochs(tmp_path)) == 1


def test_a_value_file_that_does_not_fit_only_deletes_the_entry(
    tmp_path: Path, views: Views, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18 break 2: ENOSPC writing a value file; deleting the row still fits."""
    one, two = views()
    big = 300 * 1024  # past the size kept inside the database: a value file
    one.store("big", b"1" * big, "e1")
    assert _body(two, "big") == b"1" * big
    disk = one._db.open().disk
    keep = disk.store

    def no_space(value: object, read: bool, key: object = diskcache.core.UNKNOWN) -> object:
        if isinstance(value, bytes) and len(value) > big:
            raise OSError(errno.ENOSPC, "No space left on device")
        return keep(value, read, key)

    monkeypatch.setattr(disk, "store", no_space)
    one.store("big", b"2" * big, "e2")
    assert _body(two, "big") is None
    assert not list((tmp_path / "cache").glob("marks.*/*"))  # no marker was needed
    monkeypatch.undo()
    one.store("big", b"3" * big, "e3")
    assert _body(two, "big") == b"3" * big


def test_a_busy_cache_lock_leaves_no_written_key_usable_in_any_view(
    tmp_path: Path, views: Views
) -> None:
    """Issue 18 break 3: past the lock timeout, the update after a save or delete was
    skipped and the old entry stayed valid."""
    one, two = views(lock_timeout=0.2)
    one.store("k", b"v1", "e1")
    one.store("gone", b"g", "eg")
    gate = threading.Event()
    land = two._fills._land
    two._fills._land = lambda key, fill: (gate.wait(10), land(key, fill))  # type: ignore[method-assign]
    two.fill("held", b"old", "e-old", two.generation("held"))  # a read's fill, not landed yet
    with _lock_held(tmp_path):
        one.store("k", b"v2", "e2")  # waits 0.2 s, then marks the key stale
        one.invalidate("gone")
        one.invalidate("held")
        for view in (one, two):
            assert _body(view, "k") is None
            assert view.meta("gone") is None
            assert _body(view, "held") is None  # the pending fill is not served either
            assert view.generation("k") == NEVER
    gate.set()
    two.settle()
    # The lock is free: the next read resolves the marker (forgets the key) before it
    # takes the generation, so its fill caches the value.
    two.fill("k", b"v2", "e2", two.generation("k"))
    two.settle()
    assert _body(one, "k") == b"v2"
    assert (one.meta("gone"), _body(one, "held")) == (None, None)


def test_a_marker_made_while_an_update_resolves_the_key_stays(
    tmp_path: Path, views: Views, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18 break 3: resolving a marker must not remove a newer writer's marker."""
    one, two = views(lock_timeout=0.2)
    one.store("k", b"v1", "e1")
    with _lock_held(tmp_path):
        one.invalidate("k")
    marks = one._db._marks
    listed = marks.seen

    def a_newer_write_fails_meanwhile(epoch: int, name: str) -> list[str] | None:
        seen = listed(epoch, name)
        two._db._marks.mark(epoch, name)  # after the listing, before the commit
        return seen

    monkeypatch.setattr(marks, "seen", a_newer_write_fails_meanwhile)
    one.store("k", b"v2", "e2")
    monkeypatch.undo()
    assert not one._db.usable(one._slot("k"))  # the newer marker stays: no entry is served
    one.store("k", b"v3", "e3")  # resolves the newer marker
    one.store("k", b"v4", "e4")
    assert _body(two, "k") == b"v4"


def test_a_damaged_database_moves_every_view_to_one_new_cache(tmp_path: Path, views: Views) -> None:
    """Issue 18 break 2: real damage is repaired for every process of the node."""
    one, two = views()
    one.store("k", b"v1", "e1")
    assert _body(two, "k") == b"v1"
    folder = tmp_path / "cache"
    with contextlib.closing(sqlite3.connect(folder / "cache.db")) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    for name in ("cache.db", "cache.db-shm"):  # garbage over the open files, as a bad disk
        with open(folder / name, "r+b") as damaged:
            damaged.write(os.urandom((folder / name).stat().st_size))
    one.store("k", b"v2", "e2")  # finds the damage: retires the database, removes it
    assert _body(two, "k") is None  # left the retired database
    one.store("new", b"n", "en")
    assert _body(two, "new") == b"n"  # both on the same new database
    two.store("k", b"v3", "e3")
    assert _body(one, "k") == b"v3"
    assert len(_live_epochs(tmp_path)) == 1


def test_when_no_marker_can_be_made_every_view_leaves_the_database(
    tmp_path: Path, views: Views, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18 break 2/3: a disk too full even for a marker retires the database (two
    renames), so nothing it holds is served again; the next open starts a new one."""
    one, two = views(lock_timeout=0.2)
    one.store("k", b"v1", "e1")
    assert _body(two, "k") == b"v1"

    def no_room(epoch: int, name: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(one._db._marks, "mark", no_room)
    with _lock_held(tmp_path):
        one.store("k", b"v2", "e2")
        assert _body(two, "k") is None
    monkeypatch.undo()
    one.store("new", b"n", "en")
    assert (_body(two, "new"), _body(two, "k")) == (b"n", None)
    assert len(_live_epochs(tmp_path)) == 1


def test_a_cache_that_cannot_even_be_set_aside_fails_the_update_loudly(
    tmp_path: Path, views: Views, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write says what happened and the way out, rather than leave v1 served."""
    one, _ = views(lock_timeout=0.1)
    one.store("k", b"v1", "e1")

    def broken(*args: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(one._db._marks, "mark", broken)
    monkeypatch.setattr(one._db._marks, "retire", broken)
    with _lock_held(tmp_path), pytest.raises(LocalStorageError, match="remove that folder"):
        one.store("k", b"v2", "e2")


def test_clear_under_a_busy_lock_waits_once_and_leaves_no_entry_usable(
    tmp_path: Path, views: Views
) -> None:
    """Issue 18 break 3: clear() marks every key; it waits for the lock only once."""
    one, two = views(lock_timeout=0.5)
    for index in range(10):
        one.store(f"k{index}", b"v", "e")
    with _lock_held(tmp_path):
        started = time.monotonic()
        one.clear()
        assert time.monotonic() - started < 2.5  # not 10 x 0.5 s
        assert [_body(two, f"k{index}") for index in range(10)] == [None] * 10
