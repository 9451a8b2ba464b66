"""The ledger is validated on read (issue 18 break 6): counts, sizes and times no store
writes (negative, NaN, a lease expiring in the year 33,000, a grace of 20 hours) are damage,
repaired from a listing, and the limit holds; a dead store's lease is reclaimed within the
documented bound (LEASE_SECONDS + MAX_GRACE_SECONDS + RECOUNT_SECONDS after its last
renewal) whatever that store's settings were."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from objectstore_s3 import ObjectStore
from objectstore_s3.quota import LEDGER, MAX_GRACE_SECONDS, RECOUNT_SECONDS
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket
from tests.conftest import StoreFactory, store_settings
from tests.quota.test_recount_rate import Clock
from tests.support.helpers import crash, ledger, listing, write_ledger
from tests.support.quota import fill, settled_store

YEAR_33000 = 9.8e11  # seconds since 1970
SLOW = {"read_timeout_seconds": 3600.0, "max_attempts": 20}  # 20 hours of worst case


def negative_count(state: dict[str, Any]) -> None:
    state["files"] = -100


def not_a_number(state: dict[str, Any]) -> None:
    state["bytes"] = float("nan")  # json.dumps writes NaN, which json.loads reads back


def lease_of_year_33000(state: dict[str, Any]) -> None:
    state["leases"]["forever"] = {"bytes": 0, "files": 2, "expires": YEAR_33000}


def grace_of_20_hours(state: dict[str, Any]) -> None:
    # A store killed two minutes after its last renewal, with the grace of 20 hours an
    # unbounded store with SLOW settings claimed.
    lease = {"bytes": 0, "files": 2, "expires": time.time() - 120, "grace": 72010.0}
    state["leases"]["killed"] = lease


@pytest.mark.parametrize(
    "plant",
    [negative_count, not_a_number, lease_of_year_33000, grace_of_20_hours],
    ids=["negative-count", "nan", "lease-of-year-33000", "grace-of-20-hours"],
)
def test_a_planted_ledger_is_repaired_from_a_listing_and_the_limit_holds(
    make_store: StoreFactory,
    plant: Callable[[dict[str, Any]], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """issue 18 break 6: values no store writes are damage: the next update recounts from
    a listing, so a save that would pass the real limit is refused and no capacity is
    starved."""
    store = settled_store(make_store, 3, value="vv", storage_file_count=5)
    state = ledger(store)
    plant(state)
    write_ledger(store, state)
    other = make_store(storage_file_count=5)
    assert fill(other) == 2  # exactly up to the real limit: not past it, not starved
    assert "damaged" in caplog.text
    assert listing(other) == (6 + 2, 5)
    assert not other.save("one-more", "x")
    other.flush()
    repaired = ledger(other)
    assert (repaired["bytes"], repaired["files"]) == listing(other)


def test_a_planted_negative_count_is_repaired_by_a_reconcile(make_store: StoreFactory) -> None:
    """issue 18 break 6: reconcile_usage() on a ledger planted with a negative count gives
    the listing's figures, and the limit holds after it."""
    store = settled_store(make_store, 3, value="vv", storage_file_count=5)
    state = ledger(store)
    negative_count(state)
    write_ledger(store, state)
    other = make_store(storage_file_count=5)
    usage = other.reconcile_usage()
    assert (usage.bytes, usage.files) == (6, 3)
    assert fill(other) == 2
    assert listing(other)[1] == 5


def test_a_slow_store_claims_the_capped_grace_and_is_reclaimed_on_the_server(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    """issue 18 break 6: a store with read_timeout_seconds=3600, max_attempts=20 killed
    holding a lease claims MAX_GRACE_SECONDS, not 20 hours: once the lease is that long
    past its expiry (rewound in the ledger here, the server's clock being real) and a
    recount is due, a store of another node reclaims the capacity."""
    killed = settled_store(make_store, 3, storage_file_count=10, **SLOW)
    assert killed.save("k3", "v")  # a live lease with headroom, unsettled
    lease_id = killed._node.parts.quota.lease_id
    crash(killed)
    state = ledger(killed)
    lease = state["leases"][lease_id]  # type: ignore[index]
    assert lease["grace"] == MAX_GRACE_SECONDS
    assert lease["files"] > 0
    now = time.time()
    lease["expires"] = now - MAX_GRACE_SECONDS - 1
    state["rebased_at"] = now - RECOUNT_SECONDS - 1
    write_ledger(killed, state)
    other = make_store(storage_file_count=10, cache_dir=tmp_path / "other-node")
    assert fill(other) == 6  # all of it: the dead lease was reclaimed with a recount
    assert listing(other)[1] == 10
    assert lease_id not in ledger(other)["leases"]  # type: ignore[operator]


def test_a_killed_slow_store_is_reclaimed_within_the_documented_bound(tmp_path: Path) -> None:
    """issue 18 break 6: a store with read_timeout_seconds=3600, max_attempts=20 killed
    holding a lease: reconcile_usage() reclaims it once LEASE + MAX_GRACE_SECONDS have
    passed since its renewal, and any save once a recount is due after that (the bound
    the README states), not 20 hours later."""
    clock = Clock(1_800_000_000.0)
    bucket = MemoryBucket(clock=clock)

    def open_store(name: str, organization: str, **settings: Any) -> ObjectStore:
        return ObjectStore(
            store_settings(
                tmp_path,
                None,
                organization_id=organization,
                storage_file_count=10,
                cache_dir=tmp_path / name,
                local_root=tmp_path / f"{name}-files",
                **settings,
            ),
            backend=MemoryBackend(bucket),
        )

    def killed_slow_store(organization: str) -> tuple[str, float]:
        """A SLOW store that saved 4 keys and was killed: its lease and its expiry."""
        killed = open_store(f"killed-{organization}", organization, **SLOW)
        for index in range(4):
            assert killed.save(f"k{index}", "v")
        lease_id = killed._node.parts.quota.lease_id
        crash(killed)
        lease = json.loads(bucket_ledger(bucket, organization))["leases"][lease_id]
        assert lease["files"] > 0  # it holds capacity beyond what it saved
        return lease_id, float(lease["expires"])

    lease_id, expires = killed_slow_store("org-reconciled")
    other = open_store("other", "org-reconciled")
    clock.now = expires + MAX_GRACE_SECONDS  # not yet past its grace: still reserved
    other.reconcile_usage()
    assert lease_id in json.loads(bucket_ledger(bucket, "org-reconciled"))["leases"]
    clock.now = expires + MAX_GRACE_SECONDS + 1
    assert other.reconcile_usage().files == 4
    assert lease_id not in json.loads(bucket_ledger(bucket, "org-reconciled"))["leases"]
    assert fill(other) == 6
    other.close()

    # Without a reconcile: the first save once a recount is due reclaims it.
    lease_id, expires = killed_slow_store("org-saved")
    clock.now = expires + MAX_GRACE_SECONDS + RECOUNT_SECONDS
    third = open_store("third", "org-saved")
    assert fill(third) == 6  # 10 objects: the dead lease's capacity is back
    assert lease_id not in json.loads(bucket_ledger(bucket, "org-saved"))["leases"]
    third.close()


def bucket_ledger(bucket: MemoryBucket, organization: str) -> bytes:
    (body,) = [
        item.body
        for key, item in bucket.objects.items()
        if key.endswith(LEDGER) and f"/{organization}/" in key
    ]
    return body
