"""Quotas by usage accounting in the bucket: LEAN's cases, overwrite and delete
accounting, O(1) requests per save, leases and their headroom. Processes racing for the
limits are in test_limits_across_processes.py, recounts in test_recount.py."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from objectstore_s3 import StorageLimitExceededError
from objectstore_s3.quota import LEDGER, grant_headroom
from objectstore_s3.quota import transaction as quota_module
from tests.conftest import StoreFactory
from tests.support.helpers import (
    ledger,
    listing,
    put_behind,
    requests_of,
    write_ledger,
)


def test_limits_and_defaults(make_store: StoreFactory) -> None:
    store = make_store()
    assert store.max_size == store.MaxSize == 10737418240
    assert store.max_files == store.MaxFiles == 10000
    limited = make_store(storage_limit_bytes=1234, storage_file_count=7)
    assert (limited.MaxSize, limited.MaxFiles) == (1234, 7)
    usage = limited.usage()
    assert (usage.bytes, usage.files, usage.max_size, usage.max_files) == (0, 0, 1234, 7)


def test_file_count_limit_exactly_n(
    make_store: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[Exception] = []
    store = make_store(storage_file_count=5, on_error=errors.append)
    assert all(store.save(f"k{index}", "v") for index in range(5))
    with caplog.at_level(logging.WARNING, logger="objectstore_s3"):
        assert store.save("k5", "v") is False
    assert len(errors) == 1
    assert isinstance(errors[0], StorageLimitExceededError)
    assert "ObjectStore limit" in str(errors[0])
    assert "5" in str(errors[0])
    assert "ObjectStore limit" in caplog.text
    assert not store.contains_key("k5")
    assert store.save("k0", "overwrite is fine")  # no new file
    assert listing(store) == (5 * 1 + len("overwrite is fine") - 1, 5)


def test_oversized_object_refused(make_store: StoreFactory) -> None:
    errors: list[Exception] = []
    store = make_store(storage_limit_bytes=1024 * 1024, on_error=errors.append)
    assert store.save_bytes("big", b"x" * (2 * 1024 * 1024)) is False
    assert "storage capacity limit" in str(errors[0])
    assert "2.00 MB" in str(errors[0])
    assert "limit of 1.00 MB" in str(errors[0])
    assert store.keys == []
    assert listing(store) == (0, 0)


@pytest.mark.parametrize("mode", ["backtest", "live"])
def test_backtest_and_live_return_false(make_store: StoreFactory, mode: str) -> None:
    store = make_store(mode=mode, storage_file_count=0)
    assert store.save("k", "v") is False


def test_research_mode_raises(make_store: StoreFactory) -> None:
    store = make_store(mode="research", storage_file_count=1)
    store.save("a", "1")
    with pytest.raises(StorageLimitExceededError, match="ObjectStore limit"):
        store.save("b", "2")
    with pytest.raises(StorageLimitExceededError, match="storage capacity limit"):
        make_store(mode="research", storage_limit_bytes=10).save("c", "x" * 11)


def test_overwrite_counts_difference(make_store: StoreFactory) -> None:
    store = make_store(storage_limit_bytes=1000)
    assert store.save_bytes("k", b"x" * 600)
    assert store.save_bytes("k", b"x" * 900)  # +300 only
    assert (store.usage().bytes, store.usage().files) == (900, 1)
    assert store.save_bytes("k2", b"x" * 200) is False  # 1100 > 1000
    assert store.save_bytes("k", b"x" * 100)
    assert store.save_bytes("k2", b"x" * 200)
    assert (store.usage().bytes, store.usage().files) == (300, 2)
    assert listing(store) == (300, 2)


def test_delete_frees_space(make_store: StoreFactory) -> None:
    store = make_store(storage_file_count=2)
    store.save("a", "1")
    store.save("b", "2")
    assert store.save("c", "3") is False
    store.delete("a")
    assert store.save("c", "3") is True
    assert store.usage().files == 2


def test_ledger_is_not_a_key(make_store: StoreFactory) -> None:
    store = make_store()
    store.save("k", "v")
    store.flush()
    assert store.keys == ["k"]
    assert len(store) == 1
    assert [kvp.key for kvp in store] == ["k"]


@pytest.mark.parametrize("existing", [10, 2000])
def test_save_costs_constant_requests(make_store: StoreFactory, existing: int) -> None:
    store = make_store()
    seed = make_store(storage_file_count=100000)
    for index in range(existing):
        put_behind(seed, f"seed/{index}", b"")  # behind the quota
    store.save("warm-up", "v")  # first save builds the ledger (one listing)
    calls = requests_of(store)
    for index in range(5):
        store.save(f"new/{index}", "v")
    assert "ListObjectsV2" not in calls
    # One conditional PUT per new key; no ledger request: the lease covers them.
    assert calls == ["PutObject"] * 5


def test_write_behind_checks_at_accept(make_store: StoreFactory, tmp_path: Path) -> None:
    store = make_store(persistence_interval_seconds=3600, storage_file_count=3)
    assert [store.save(f"k{index}", "v") for index in range(4)] == [True, True, True, False]
    assert store.save("k0", "coalesced")  # a pending key: no new file
    store.flush()
    assert listing(store) == (len("coalesced") + 2, 3)


def test_synced_local_file_is_refused_over_quota(make_store: StoreFactory) -> None:
    errors: list[Exception] = []
    store = make_store(storage_limit_bytes=1000, on_error=errors.append)
    path = Path(store.get_file_path("model.bin"))
    path.write_bytes(b"x" * 2000)
    assert store.save("model.bin") is False
    assert "storage capacity limit" in str(errors[0])
    assert listing(store) == (0, 0)
    research = make_store(
        storage_limit_bytes=1000, mode="research", local_root=store.settings.local_root
    )
    Path(research.get_file_path("model.bin")).write_bytes(b"x" * 2000)
    with pytest.raises(StorageLimitExceededError, match=r"0\.00 MB \(2000 bytes\)"):
        research.save("model.bin")
    reported: list[Exception] = []
    research.on_error = reported.append
    research.flush()  # automatic syncs report (once per version of the file), never raise
    research.flush()
    assert len(reported) == 1
    assert listing(research) == (0, 0)


def test_dead_store_lease_is_reclaimed(make_store: StoreFactory) -> None:
    crashed = make_store(storage_file_count=10)
    crashed.save("a", "1")  # takes a lease and never settles nor releases it
    survivor = make_store(storage_file_count=10)
    state = ledger(survivor)
    leases = state["leases"]
    assert isinstance(leases, dict)
    assert len(leases) == 1
    for lease in leases.values():
        lease["expires_at"] = time.time() - 1  # as if it had timed out
    write_ledger(survivor, state)
    assert survivor.usage().files == 1  # reclaimed with a listing that counts "a"
    assert all(survivor.save(f"s{index}", "v") for index in range(9))
    assert survivor.save("s9", "v") is False


def test_a_busy_store_is_granted_more_headroom_each_time_up_to_16x() -> None:
    assert grant_headroom(64_000, 15, 1000) == 62  # 16 live stores: free/64 each
    shares = [grant_headroom(64_000, 15, 1000, busy) for busy in range(7)]
    assert shares == [62, 125, 250, 500, 1000, 1000, 1000]  # doubling, then the cap
    assert grant_headroom(64_000, 15, 10**9, 9) == 64_000 // 4 // 16  # at most free/4 each
    assert grant_headroom(0, 0, 1000, 4) == 0


def test_a_store_that_keeps_saving_updates_the_ledger_rarely(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def ledger_updates(busy_seconds: float, *, paced: bool = True) -> int:
        with monkeypatch.context() as patch:
            patch.setattr(quota_module, "_BUSY_SECONDS", busy_seconds)
            if not paced:  # grants without the store's pace: the busy rule alone
                grow = quota_module.Pace.grow
                patch.setattr(
                    quota_module.Pace, "grow", lambda pace, now: (grow(pace, now)[0], 0, 0)
                )
            store = make_store(storage_file_count=6400)
            store.save("first", b"")
            calls: list[str] = []
            store._node.parts.quota.book.records.on_request(  # type: ignore[attr-defined]
                lambda operation, key: calls.append(operation) if key == LEDGER else None
            )
            for index in range(600):
                store.save_bytes(f"k{index}", b"")
            return calls.count("PutObject")

    # A first grant of 6400/64 = 100 files. Then a busy store's grants double (200, 400,
    # ...), and any store's grant covers its pace (what it spent since its last grow,
    # carried to its next renewal), both within 16x the share (1,600 files here).
    assert ledger_updates(0.0, paced=False) >= 5  # neither: every grant is free/64
    assert ledger_updates(60.0, paced=False) <= 3  # busy
    assert ledger_updates(0.0) <= 3  # never busy, but paced
