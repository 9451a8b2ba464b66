"""Iteration and read_many fetch ahead: bounded parallelism, bounded memory, current values.

The parallelism and memory checks use the in-memory backend with a fault hook that
holds GETs at a barrier, so what is in flight at once is observed, not timed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from objectstore_s3 import InvalidKeyError, KeyNotFoundError, ObjectStore
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket
from tests.conftest import StoreFactory, store_settings

MiB = 1024 * 1024


def test_read_many_yields_in_the_given_order(store: ObjectStore) -> None:
    for index in range(30):
        store.save(f"k{index:02d}", f"v{index}")
    wanted = [f"k{index:02d}" for index in (7, 3, 29, 0, 3)]
    assert list(store.read_many(wanted)) == [(key, f"v{int(key[1:])}".encode()) for key in wanted]


def test_read_many_raises_for_a_missing_key_at_its_turn(store: ObjectStore) -> None:
    store.save("a", "1")
    store.save("c", "3")
    results = store.read_many(["a", "b", "c"])
    assert next(results) == ("a", b"1")
    with pytest.raises(KeyNotFoundError, match="'b'"):
        next(results)


def test_read_many_checks_every_key_before_fetching(store: ObjectStore) -> None:
    store.save("a", "1")
    with pytest.raises(InvalidKeyError):
        store.read_many(["a", "../escape"])  # raised at the call, not at the second item
    with pytest.raises(TypeError):
        store.read_many(["a", 5])  # type: ignore[list-item]


@pytest.mark.parametrize("interval", [0.0, 3600.0], ids=["write-through", "write-behind"])
def test_saves_and_deletes_made_while_iterating_are_seen(
    make_store: StoreFactory, interval: float
) -> None:
    store = make_store(persistence_interval_seconds=interval)
    for index in range(20):
        store.save(f"k{index:02d}", "old")
    seen = {}
    deleted: set[str] = set()
    for key, value in store:
        seen[key] = value
        number = int(key[1:])
        after, later = f"k{number + 1:02d}", f"k{number + 2:02d}"
        if number + 1 < 20 and after not in deleted:
            store.save(after, f"new after {key}")  # already fetched ahead, probably
        if number + 2 < 20 and number % 5 == 0:
            store.delete(later)
            deleted.add(later)
    assert set(seen) == {f"k{n:02d}" for n in range(20)} - deleted
    for key, value in seen.items():
        before = f"k{int(key[1:]) - 1:02d}"
        assert value == (f"new after {before}".encode() if before in seen else b"old")


class _Gate:
    """Holds every GET of an object until released; counts GETs in flight."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.started = 0
        self.changed = threading.Condition(self.lock)
        self.release = threading.Event()

    def __call__(self, operation: str, key: str, stage: str) -> None:
        if operation != "GetObject" or "/.objectstore" in key:
            return
        with self.lock:
            if stage == "before":
                self.in_flight += 1
                self.started += 1
                self.peak = max(self.peak, self.in_flight)
            else:
                self.in_flight -= 1
            self.changed.notify_all()
        if stage == "before":
            self.release.wait(timeout=10)

    def wait_for(self, started: int) -> None:
        with self.lock:
            assert self.changed.wait_for(lambda: self.started >= started, timeout=10)


def _count_gets(bucket: MemoryBucket) -> list[str]:
    """A live list of the object GETs sent to the bucket from now on."""
    gets: list[str] = []

    def hook(operation: str, key: str | None) -> None:
        if operation == "GetObject" and key and "/.objectstore" not in key:
            gets.append(key)

    bucket.hooks.append(hook)
    return gets


def _memory_store(tmp_path: Path, **overrides: Any) -> tuple[ObjectStore, MemoryBucket]:
    bucket = MemoryBucket()
    settings = store_settings(tmp_path, cache_size_limit=0, **overrides)
    store = ObjectStore(settings, backend=MemoryBackend(bucket))
    return store, bucket


def test_values_are_fetched_in_parallel_up_to_max_concurrency(tmp_path: Path) -> None:
    store, bucket = _memory_store(tmp_path, max_concurrency=4)
    with store:
        for index in range(12):
            store.save(f"k{index:02d}", b"x" * 10)
        store.clear()
        gate = _Gate()
        bucket.faults.append(gate)
        values = store.read_many([f"k{index:02d}" for index in range(12)])
        first = threading.Thread(target=lambda: next(values))
        first.start()
        gate.wait_for(4)  # four GETs held at once: the reads run in parallel
        with gate.lock:
            assert gate.in_flight == 4
        gate.release.set()
        first.join(timeout=10)
        assert [key for key, _ in values] == [f"k{index:02d}" for index in range(1, 12)]
        assert gate.peak == 4  # never more than max_concurrency


def test_memory_waiting_for_the_caller_is_bounded(tmp_path: Path) -> None:
    store, bucket = _memory_store(tmp_path, max_concurrency=2, read_ahead_bytes=3 * MiB)
    with store:
        for index in range(20):
            store.save(f"k{index:02d}", bytes([index]) * MiB)
        store.clear()
        gets = _count_gets(bucket)
        values = store.read_many([f"k{index:02d}" for index in range(20)])
        key, value = next(values)
        assert (key, value) == ("k00", b"\x00" * MiB)

        # The caller holds off: fetching stops once 3 MiB wait (plus the two in flight).
        # Nothing signals "no more fetches", so give them half a second to appear.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline and len(gets) <= 6:
            threading.Event().wait(0.01)
        assert len(gets) <= 1 + 3 + 2
        rest = list(values)
        assert [key for key, _ in rest] == [f"k{index:02d}" for index in range(1, 20)]
        assert all(value == bytes([int(key[1:])]) * MiB for key, value in rest)


def test_an_abandoned_iteration_stops_fetching(tmp_path: Path) -> None:
    store, bucket = _memory_store(tmp_path, max_concurrency=2)
    with store:
        for index in range(50):
            store.save(f"k{index:02d}", b"v")
        store.clear()
        for _kvp in store:
            break
        gets = _count_gets(bucket)
        for thread in threading.enumerate():
            if thread.name.startswith("objectstore-read"):
                thread.join(timeout=10)
        assert not [t for t in threading.enumerate() if t.name.startswith("objectstore-read")]
        assert len(gets) <= 2  # at most the reads that were already running


def test_a_key_missing_when_fetched_ahead_but_saved_before_its_turn_is_read(
    store: ObjectStore,
) -> None:
    store.save("a", "1")
    values = store.read_many(["a", "b"])  # b is fetched ahead: missing then
    assert next(values) == ("a", b"1")
    store.save("b", "2")  # this process writes b before its turn
    assert next(values) == ("b", b"2")
