"""`ObjectStore.read_range`: the console's preview reads a range of a value, never the
whole value; the range is what `read_bytes` would give, sliced."""

from __future__ import annotations

import random

import pytest

from objectstore_s3 import KeyNotFoundError
from tests.conftest import StoreFactory

MiB = 1024 * 1024


@pytest.mark.backends("memory", "seaweedfs", "seaweedfs-obstore")
def test_a_range_of_an_uncached_value_is_that_slice_of_it(make_store: StoreFactory) -> None:
    store = make_store()
    data = random.Random(7).randbytes(3 * MiB + 5)
    assert store.save_bytes("big/value.bin", data)
    store.clear()  # not cached: the range comes from the bucket
    assert store.read_range("big/value.bin", 0, MiB) == data[:MiB]
    assert store.read_range("big/value.bin", 2 * MiB, 3 * MiB + 100) == data[2 * MiB :]
    assert store.read_range("big/value.bin", 3 * MiB + 5, 4 * MiB) == b""
    with pytest.raises(KeyNotFoundError):
        store.read_range("big/absent", 0, 10)


@pytest.mark.backends("memory", "seaweedfs")
def test_a_range_sees_this_nodes_pending_value(make_store: StoreFactory) -> None:
    store = make_store(persistence_interval_seconds=3600)
    store.save("notes.txt", "0123456789")  # journaled, not in the bucket yet
    assert store.read_range("notes.txt", 3, 6) == b"345"
    store.delete("notes.txt")
    with pytest.raises(KeyNotFoundError):
        store.read_range("notes.txt", 0, 1)


@pytest.mark.backends("memory")
def test_a_bad_range_is_refused(make_store: StoreFactory) -> None:
    store = make_store()
    store.save("a", "abc")
    with pytest.raises(ValueError, match="start <= end"):
        store.read_range("a", 5, 2)
