"""When a store's lease is renewed: the write-behind flusher, which runs every round,
renews it only once it has reached its renewal point (it used to update the ledger every
round, a request per store per second with `persistence_interval_seconds=1`); an explicit
renewal always updates it. Far from the limits a renewal is a heartbeat, and a lease kept
by heartbeats is reclaimed only once they stop."""

from __future__ import annotations

from objectstore_s3.quota import LEDGER, Ledger, Quota
from objectstore_s3.quota.account import LEASE_SECONDS
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket


def test_the_flushers_renewal_waits_for_the_leases_renewal_point() -> None:
    now = [1_800_000_000.0]
    bucket = MemoryBucket(clock=lambda: now[0])
    puts: list[str] = []  # the ledger's
    beats: list[str] = []  # the lease's heartbeats
    bucket.hooks.append(
        lambda operation, key: (
            (puts if key.endswith(LEDGER) else beats).append(key)
            if key and operation == "PutObject" and key.startswith(".objectstore/")
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
    assert beats == []
    now[0] += LEASE_SECONDS * 0.36  # past it, whatever point this store drew
    quota.renew(when_due=True)
    # Far from the limits, with little unsettled: a heartbeat, not a ledger update.
    assert (len(puts), beats) == (taken, [f".objectstore/org/leases/{quota.lease_id}"])
    quota.renew()  # asked for: always an update
    assert len(puts) == taken + 1
    ledger = quota.ledger()
    assert ledger is not None
    assert ledger.files == 1  # the renewal settled the save


def test_a_lease_kept_by_heartbeats_is_reclaimed_only_once_they_stop() -> None:
    """A store far from the limits renews by heartbeat, not in the ledger: its lease's
    `expires` there goes stale, yet another store's recount must not reclaim it while the
    heartbeats go on; once they stop (the node died), it is reclaimed as a dead node's
    after its last heartbeat's lease and grace (docs/quotas.md, "Heartbeats")."""
    now = [1_800_000_000.0]
    bucket = MemoryBucket(clock=lambda: now[0])
    objects = MemoryBackend(bucket, "org/")

    def store() -> Quota:
        return Quota(MemoryBackend(bucket, ".objectstore/org/"), objects, 10**9, 10**6, grace=5)

    def save(quota: Quota, key: str) -> None:
        with quota.transaction(key, files=1, size=1) as spend:
            objects.put(key, b"x", if_none_match="*")
            spend.effect(1, 1)

    beating, other = store(), store()
    save(beating, "b")
    first = ledger_of(bucket).leases[beating.lease_id].expires
    for _ in range(10):  # five minutes of renewals by heartbeat, nothing in the ledger
        now[0] += LEASE_SECONDS * 0.66
        beating.renew(when_due=True)
        other.reconcile()  # a recount, which looks for dead leases
        assert beating.lease_id in ledger_of(bucket).leases  # alive by its heartbeats
    assert ledger_of(bucket).leases[beating.lease_id].expires > first + 4 * LEASE_SECONDS
    save(beating, "b2")  # still its lease: spent without asking
    assert ledger_of(bucket).files == 1
    now[0] += LEASE_SECONDS + 5 + 2  # the heartbeats stopped: past its lease and grace
    other.reconcile()
    assert beating.lease_id not in ledger_of(bucket).leases  # reclaimed, with a recount
    assert ledger_of(bucket).files == 2  # both saves, from the listing
    assert not list(MemoryBackend(bucket, ".objectstore/org/leases/").list())  # its heartbeat too


def ledger_of(bucket: MemoryBucket) -> Ledger:
    body = MemoryBackend(bucket, ".objectstore/org/").get(LEDGER)
    assert body is not None
    return Ledger.parse(body.body)
