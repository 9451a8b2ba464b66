"""Issue 18 break 8: a node killed with pending write-behind saves, restarted after another
node deleted the key, never recreates it: the delete left a tombstone written after the
save was accepted, so the replay gives way and reports it (SupersededWriteError naming the
key, on on_error). The converse holds too: a delete made before the save was accepted
does not stop the replay (the user's last operation wins). On the in-memory backend with
a clock the test drives, and on SeaweedFS with its own clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreError, ObjectStoreSettings, SupersededWriteError
from objectstore_s3.node.tombstones import HORIZON
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket
from tests.support.helpers import crash
from tests.support.model.envs import FakeClock


class Rig:
    """Node A (write-behind) and node B (write-through) on one organization."""

    def __init__(
        self,
        settings: Callable[..., ObjectStoreSettings],
        backend: Callable[[], Any],
        later: Callable[[ObjectStore], None],
        folder: Path,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._later = later
        self.folder = folder
        self.opened: list[ObjectStore] = []
        self.errors: list[ObjectStoreError] = []

    def node_a(self) -> ObjectStore:
        return self._open("a", persistence_interval_seconds=3600, on_error=self.errors.append)

    def node_b(self) -> ObjectStore:
        return self._open("b")

    def _open(self, name: str, on_error: Any = None, **overrides: Any) -> ObjectStore:
        overrides["cache_dir"] = self.folder / name / "cache"
        overrides["local_root"] = self.folder / name / "local"
        settings = self._settings(**overrides)
        store = ObjectStore(settings, on_error=on_error, backend=self._backend())
        self.opened.append(store)
        return store

    def later(self, store: ObjectStore) -> None:
        """Let the server's clock pass well beyond its resolution (one second on S3)."""
        self._later(store)

    def dropped(self, key: str) -> bool:
        return any(
            isinstance(error, SupersededWriteError) and f"'{key}'" in str(error)
            for error in self.errors
        )


def _poll_server_clock(store: ObjectStore) -> None:
    backend = store._connection()
    backend.head("clock-probe")
    start = backend.server_time()
    assert start is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        backend.head("clock-probe")
        now = backend.server_time()
        assert now is not None
        if now[0] >= start[1] + 2.5:
            return
        time.sleep(0.25)  # a poll of the server's clock, with a deadline
    raise AssertionError("the server's clock did not advance")


@pytest.fixture(params=["memory", pytest.param("seaweedfs", marks=pytest.mark.seaweedfs)])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    if request.param == "memory":
        clock = FakeClock()
        bucket = MemoryBucket(clock=clock)
        base = ObjectStoreSettings(
            endpoint_url="http://127.0.0.1:9",
            access_key_id="k",
            secret_access_key="s",
            organization_id="org-replay",
            max_attempts=1,
        )

        def memory_later(store: ObjectStore) -> None:
            clock.now += 5.25

        made = Rig(
            lambda **o: base.model_copy(update=o),
            lambda: MemoryBackend(bucket),
            memory_later,
            tmp_path,
        )
    else:
        factory = request.getfixturevalue("seaweed_settings")
        made = Rig(factory, lambda: None, _poll_server_clock, tmp_path)
    yield made
    for store in made.opened:
        if not store._node.closed:
            store.close()


def _replay(rig: Rig) -> ObjectStore:
    """Node A's next process: adopts the dead one's journal and uploads it."""
    store = rig.node_a()
    store.flush()
    return store


def test_replay_never_recreates_a_key_deleted_after_the_save_was_accepted(rig: Rig) -> None:
    """Issue 18 break 8: A saves k over the object it knows, is killed; B deletes k; A's
    replay leaves k absent and reports the save it dropped."""
    b = rig.node_b()
    b.save("k", "v0")
    a = rig.node_a()
    assert a.read("k") == "v0"  # A knows the object its save replaces
    a.save("k", "v1")
    crash(a)
    rig.later(b)
    b.delete("k")
    replayed = _replay(rig)
    assert not b.contains_key("k")
    assert not replayed.contains_key("k")
    assert rig.dropped("k")


def test_replay_never_recreates_a_key_created_and_deleted_after_the_save(rig: Rig) -> None:
    """Issue 18 break 8, a create: k was absent when A saved it; B created and deleted k
    after; A's replay leaves k absent and reports the save it dropped."""
    a = rig.node_a()
    assert not a.contains_key("k")
    a.save("k", "v1")
    crash(a)
    b = rig.node_b()
    rig.later(b)
    b.save("k", "v2")
    b.delete("k")
    replayed = _replay(rig)
    assert not b.contains_key("k")
    assert not replayed.contains_key("k")
    assert rig.dropped("k")


def test_replay_recreates_a_key_deleted_before_the_save_was_accepted(rig: Rig) -> None:
    """Issue 18 break 8, the converse: B deleted k before A's save was accepted (A still
    had the old object cached); A's replay recreates k: the user's last operation wins."""
    b = rig.node_b()
    b.save("k", "v0")
    b.save("j", "v0")
    a = rig.node_a()
    assert a.read("k") == "v0"
    b.delete("k")
    b.delete("j")
    rig.later(b)
    a.save("k", "v1")  # over the object A believes is there
    a.save("j", "v1")  # A never looked: a create
    crash(a)
    replayed = _replay(rig)
    assert b.read("k") == "v1"
    assert b.read("j") == "v1"
    assert replayed.read("k") == "v1"
    assert not rig.dropped("k")
    assert not rig.dropped("j")


def test_a_nodes_own_delete_never_stops_its_later_save(rig: Rig) -> None:
    """Issue 18 break 8: A's own delete (its tombstone) is older than A's next save of
    the key, even within the server clock's resolution: the save is applied."""
    a = rig.node_a()
    a.save("k", "v0")
    a.flush()
    a.delete("k")
    a.flush()
    a.save("k", "v1")
    a.flush()
    assert rig.node_b().read("k") == "v1"
    assert not rig.dropped("k")


def _store_on_clock(tmp_path: Path, clock: FakeClock, **overrides: Any) -> ObjectStore:
    """A store on an in-memory bucket whose server clock the test drives."""
    settings = ObjectStoreSettings(
        endpoint_url="http://127.0.0.1:9",
        access_key_id="k",
        secret_access_key="s",
        organization_id="org-tombstones",
        cache_dir=tmp_path / "cache",
        local_root=tmp_path / "local",
        **overrides,
    )
    return ObjectStore(settings, backend=MemoryBackend(MemoryBucket(clock=clock)))


def test_reconcile_prunes_tombstones_past_the_replay_horizon(tmp_path: Path) -> None:
    """Issue 18 break 8: deletes are remembered for the replay horizon (7 days), then
    reconcile_usage() forgets them; a younger one stays."""
    clock = FakeClock()
    with _store_on_clock(tmp_path, clock) as store:
        store.save("old", "v")
        store.delete("old")
        clock.now += HORIZON + 60
        store.save("young", "v")
        store.delete("young")
        tombstones = store._node.parts.writer.committer.tombstones
        assert len(tombstones.recent()) == 2
        store.reconcile_usage()
        (left,) = tombstones.recent().values()
        assert left.last_modified == clock.now


def test_a_flush_forgets_tombstones_past_the_horizon_without_a_reconcile(
    tmp_path: Path,
) -> None:
    """Issue 18 break 8: the listing a batch of pending creates makes stays about the size
    of the horizon's deletes: the tombstones past it that it meets are forgotten."""
    clock = FakeClock()
    with _store_on_clock(tmp_path, clock, persistence_interval_seconds=3600) as store:
        for index in range(3):
            store.save(f"old-{index}", "v")
            store.flush()
            store.delete(f"old-{index}")
            store.flush()
        tombstones = store._node.parts.writer.committer.tombstones
        assert len(tombstones.recent()) == 3
        clock.now += HORIZON + 60
        store.save("young", "v")
        store.flush()
        store.delete("young")
        store.flush()
        store.save("new", "v")  # a pending create: its batch lists the tombstones
        store.flush()
        (left,) = tombstones.recent().values()
        assert left.last_modified is not None
        assert left.last_modified > clock.now - HORIZON
