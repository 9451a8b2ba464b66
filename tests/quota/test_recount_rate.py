"""Recounts cost O(1) requests per save amortized (issue 18 break 7): after a lost answer,
a quiet organization near its limit lists its objects at most once per RECOUNT_SECONDS
(recorded in the ledger, so across processes and nodes), however many ledger updates its
saves make; meanwhile the maybe stays counted, and a save it might push over the limit
is refused."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from objectstore_s3 import ObjectStore
from objectstore_s3.errors import OutcomeUnknownError
from objectstore_s3.quota import RECOUNT_SECONDS
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket
from tests.conftest import StoreFactory, store_settings
from tests.support.helpers import ledger, listing, put_behind, requests_of

OBJECTS = 3000
SAVES = 200


def lose_one_answer(store: ObjectStore, monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    """The next PUT of `key` lands but its answer is lost, and a HEAD cannot tell it was
    this write: a maybe (its increase counted until its horizon)."""
    objects = store._node.parts.objects
    real_put = objects.put

    def put(name: str, data: bytes, **kwargs: Any) -> object:
        info = real_put(name, data, **kwargs)
        if name == key and not lost:
            lost.append(name)
            raise OutcomeUnknownError("lost on the way back", None)
        return info

    lost: list[str] = []
    monkeypatch.setattr(objects, "put", put)


def count_listings(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A live list with one entry per listing of the organization the store makes."""
    objects = store._node.parts.objects
    real_list = objects.list
    listings: list[int] = []

    def counted(prefix: str = "") -> Any:
        listings.append(1)
        return real_list(prefix)

    monkeypatch.setattr(objects, "list", counted)
    return listings


def organization_near_its_limit(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """OBJECTS objects (written behind the store, then recounted), one save whose answer
    was lost: the ledger counts OBJECTS + 2 (the lost one may land again, a maybe)."""
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: put_behind(store, f"old/{i:05}", b"x"), range(OBJECTS)))
    lose_one_answer(store, monkeypatch, "lost")
    assert store.save("lost", "x")
    store.reconcile_usage()  # the listing has it; the maybe is added back until its horizon
    state = ledger(store)
    assert (len(state["maybes"]), state["files"]) == (1, OBJECTS + 2)  # type: ignore[arg-type]


def cycle(store: ObjectStore, saves: int, tick: Any = None) -> None:
    """Delete the key saved before and save a new one, `saves` times: each save near the
    limit asks the ledger for room (a quiet organization, no headroom left)."""
    for index in range(saves):
        if index:
            assert store.delete(f"new/{index - 1}")
        assert store.save(f"new/{index}", "x")
        if tick is not None:
            tick()


@pytest.mark.backends("memory", "seaweedfs")  # 3,000 objects: too slow to fill on moto
def test_lost_answers_near_the_limit_cost_one_listing_per_interval_on_the_server(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 18 break 7: 200 saves near the limit after one lost answer, in an
    organization of 3,000 objects: at most one listing per RECOUNT_SECONDS (before the
    fix: one per save, 3 ListObjectsV2 requests each on S3)."""
    store = make_store(storage_file_count=OBJECTS + 3)
    organization_near_its_limit(store, monkeypatch)
    listings = count_listings(store, monkeypatch)
    requests = requests_of(store)
    started = time.monotonic()
    cycle(store, SAVES)
    elapsed = time.monotonic() - started
    assert len(listings) <= 1 + elapsed // RECOUNT_SECONDS, (len(listings), elapsed)
    pages = requests.count("ListObjectsV2")
    assert pages <= len(listings) * (OBJECTS // 1000 + 1)
    assert not store.save("one-more", "x")  # OBJECTS + lost + new/199 + the maybe
    assert listing(store)[1] == OBJECTS + 2


class Clock:
    """The in-memory server's clock, driven by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += 1.0


def test_a_quiet_organization_lists_at_most_once_per_interval_until_and_past_a_horizon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 18 break 7, on the in-memory server's clock: 200 saves a second apart, past
    the lost answer's horizon: at most one listing per RECOUNT_SECONDS; the maybe is
    counted until a recount after its horizon, then the ledger is exact."""
    clock = Clock(1_800_000_000.0)
    bucket = MemoryBucket(clock=clock)
    settings = store_settings(tmp_path, None, storage_file_count=OBJECTS + 3)
    store = ObjectStore(settings, backend=MemoryBackend(bucket))
    organization_near_its_limit(store, monkeypatch)
    horizon = float(ledger(store)["maybes"][0][2])  # type: ignore[index]
    assert store.save("new/extra", "x")  # OBJECTS + 2 exist, OBJECTS + 3 counted
    assert not store.save("new/refused", "x")  # the maybe might push it over: refused
    assert store.delete("new/extra")
    listings = count_listings(store, monkeypatch)
    started = clock.now
    cycle(store, SAVES, clock.tick)
    assert clock.now > horizon + RECOUNT_SECONDS  # the run outlasts the horizon
    assert len(listings) <= 1 + (clock.now - started) // RECOUNT_SECONDS
    assert ledger(store)["maybes"] == []  # recounted past its horizon: the listing counts
    store.close()
    check = ObjectStore(
        settings.model_copy(update={"cache_dir": tmp_path / "check"}),
        backend=MemoryBackend(bucket),
    )
    state = ledger(check)
    assert listing(check) == (OBJECTS + 2, OBJECTS + 2)
    assert (state["bytes"], state["files"]) == listing(check)  # exact at rest
    assert check.save("one-more", "x")  # the maybe's room is back
    assert not check.save("too-many", "x")
    check.close()
