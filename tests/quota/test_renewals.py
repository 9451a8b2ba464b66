"""When a store's lease is renewed: the write-behind flusher, which runs every round,
renews it only once it has reached its renewal point (it used to update the ledger every
round, a request per store per second with `persistence_interval_seconds=1`); an explicit
renewal always updates it."""

from __future__ import annotations

from objectstore_s3.quota import LEDGER, Quota
from objectstore_s3.quota.account import LEASE_SECONDS
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket


def test_the_flushers_renewal_waits_for_the_leases_renewal_point() -> None:
    now = [1_800_000_000.0]
    bucket = MemoryBucket(clock=lambda: now[0])
    puts: list[str] = []
    bucket.hooks.append(
        lambda operation, key: (
            puts.append(operation)
            if key and key.endswith(LEDGER) and operation == "PutObject"
            else None
        )
    )
    objects = MemoryBackend(bucket, "org/")
    quota = Quota(MemoryBackend(bucket, ".objectstore/org/"), objects, 10**9, 1000)
    with quota.transaction("a", files=1, size=1) as spend:
        objects.put("a", b"x", if_none_match="*")
        spend.effect(1, 1)
    taken = len(puts)
    assert taken == 1  # the lease
    quota.renew(when_due=True)
    now[0] += LEASE_SECONDS * 0.3  # before any store's renewal point (35-65 % of the lease)
    quota.renew(when_due=True)
    assert len(puts) == taken  # nothing to do yet: the lease covers the unsettled save
    now[0] += LEASE_SECONDS * 0.36  # past it, whatever point this store drew
    quota.renew(when_due=True)
    assert len(puts) == taken + 1
    quota.renew()  # asked for: always an update
    assert len(puts) == taken + 2
    ledger = quota.ledger()
    assert ledger is not None
    assert ledger.files == 1  # the renewal settled the save
