"""The quota's pure accounting (quota/ledger.py, account.py, spend.py), without a bucket.

The ledger document and its validation, capacity and expiry, the rebase rule of recounts,
maybes and their horizon, drift and when it is repaired, a store's account settling into
the ledger (never twice), grants, and the refusals at a limit. See docs/quotas.md.
"""

from __future__ import annotations

import json
import random

import pytest

from objectstore_s3.errors import StorageLimitExceededError
from objectstore_s3.quota.account import (
    HOLD_SECONDS,
    LEASE_SECONDS,
    MAX_GRACE_SECONDS,
    Account,
    Delta,
    Lease,
    Rebase,
    claimable_grace,
)
from objectstore_s3.quota.books import Books
from objectstore_s3.quota.ledger import (
    DRIFT_SECONDS,
    RECOUNT_SECONDS,
    SKEW_SECONDS,
    Ledger,
    LedgerDamagedError,
    grant_headroom,
)
from objectstore_s3.quota.spend import MB, Spend, bytes_refused, files_refused
from objectstore_s3.quota.transaction import Pace


def lease(**fields: object) -> dict[str, object]:
    return {"bytes": 10, "files": 1, "expires": 100.0, **fields}


def body(**fields: object) -> bytes:
    return json.dumps({"bytes": 0, "files": 0, **fields}).encode()


# -- the record: parse, dump, rejection of damaged ledgers --------------------------------


def test_a_ledger_survives_its_own_dump_and_parse() -> None:
    book = Ledger(
        bytes=-5,  # committed figures may dip below zero while stores settle in any order
        files=-1,  # (within what the leases reserve)
        generation=1796150000000,
        rebased_at=1796150000.25,
        drift=True,
        leases={"a": Lease(16, 2, 4, 1, expires=60.5, grace=9.0, nonce="n1", settled=3)},
        holds={"dead": Lease(4, 1, expires=3600.0)},
        maybes=[(1, 10, 100.0), (0, 3, 50.5)],
    )
    assert Ledger.parse(book.dump()) == book


def test_the_dump_is_a_sorted_version_2_document() -> None:
    book = Ledger(bytes=3, files=1, maybes=[(1, 3, 9.0)], leases={"a": Lease(1, 1, expires=2)})
    raw = json.loads(book.dump())
    assert raw["version"] == 2
    assert raw["maybes"] == [[1, 3, 9.0]]
    assert raw["leases"]["a"] == {
        "bytes": 1,
        "files": 1,
        "held_bytes": 0,
        "held_files": 0,
        "expires": 2,
        "grace": 120.0,
        "nonce": "",
        "settled": 0,
    }
    assert book.dump() == json.dumps(raw, sort_keys=True).encode()  # stable bytes


def test_optional_fields_of_an_older_ledger_take_their_defaults() -> None:
    book = Ledger.parse(
        body(bytes=7, files=2, leases={"a": {"bytes": 1, "files": 0, "expires": 5}})
    )
    assert (book.bytes, book.files, book.generation, book.rebased_at) == (7, 2, 0, 0.0)
    assert (book.drift, book.holds, book.maybes) == (False, {}, [])
    assert book.leases["a"] == Lease(1, 0, 0, 0, expires=5.0, grace=120.0, nonce="", settled=0)


@pytest.mark.parametrize(
    "damaged",
    [
        b"{",  # not JSON
        b"[1, 2]",  # not an object
        b'{"files": 0}',  # no committed bytes
        body(bytes="12"),  # a string
        body(files=True),  # a boolean is not a count
        b'{"bytes": 1e400, "files": 0}',  # infinite
        b'{"bytes": NaN, "files": 0}',
        body(bytes=2**63),  # beyond any real usage
        body(generation=-1),
        body(files=-5),  # issue 18 break 6: below what any lease reserves: no store's
        body(bytes=-11, files=1, leases={"a": lease()}),  # the lease reserves 10 bytes
        body(files=-2, holds={"a": lease()}),
        body(leases={"a": lease(grace=72010.0)}),  # 20 hours: past MAX_GRACE_SECONDS
        body(leases={"a": lease(grace=float("nan"))}),
        body(leases={"a": lease(grace=-1.0)}),
        body(rebased_at="yesterday"),
        body(leases={"a": {"bytes": 1, "files": 1}}),  # a lease without `expires`
        body(leases={"a": [1, 1, 5]}),
        body(leases={"a": lease(bytes=-1)}),
        body(leases={"a": lease(held_files=-2)}),
        body(holds={"a": lease(expires=None)}),
        body(leases=[1]),
        body(maybes=[[1, 2]]),  # a maybe is [files, bytes, until]
        body(maybes=[[-1, 2, 3.0]]),  # a maybe is an increase
        body(maybes=[[1, 2, "soon"]]),
        b"[" * 100_000 + b"]" * 100_000,  # nested beyond the parser's recursion
    ],
)
def test_a_ledger_of_nonsense_is_refused_as_damaged(damaged: bytes) -> None:
    with pytest.raises(LedgerDamagedError):
        Ledger.parse(damaged)


YEAR_33000 = 9.8e11  # seconds since 1970


def test_times_past_what_a_store_sets_are_damage_relative_to_the_servers_clock() -> None:
    """issue 18 break 6: a lease expiring in the year 33,000, a hold, a maybe or a recount
    dated past the longest any store sets (beyond the skew allowance) are damage."""
    now = 1_800_000_000.0
    for damaged in (
        Ledger(leases={"a": Lease(1, 1, expires=YEAR_33000)}),
        Ledger(leases={"a": Lease(1, 1, expires=now + LEASE_SECONDS + SKEW_SECONDS + 1)}),
        Ledger(holds={"a": Lease(1, 1, expires=now + HOLD_SECONDS + SKEW_SECONDS + 1)}),
        Ledger(maybes=[(1, 1, now + MAX_GRACE_SECONDS + SKEW_SECONDS + 1)]),
        Ledger(rebased_at=YEAR_33000),
        Ledger(generation=int(YEAR_33000 * 1000)),
    ):
        with pytest.raises(LedgerDamagedError, match="past|ahead"):
            Ledger.parse(damaged.dump()).bound(now)


def test_times_a_little_past_what_a_store_sets_are_cut_back_to_it() -> None:
    """issue 18 break 6: within the skew allowance (a server's front ends may disagree a
    little), a time is cut back, so no lease, hold or maybe outlasts its documented bound."""
    now = 1_800_000_000.0
    book = Ledger(
        rebased_at=now + 5,
        leases={"a": Lease(1, 1, expires=now + LEASE_SECONDS + 100), "b": Lease(expires=now)},
        holds={"h": Lease(1, 1, expires=now + HOLD_SECONDS + 100)},
        maybes=[(1, 1, now + MAX_GRACE_SECONDS + 100), (1, 1, now + 3)],
    )
    book.bound(now)
    assert book.leases["a"].expires == now + LEASE_SECONDS
    assert book.leases["b"].expires == now  # what a store writes stands
    assert book.holds["h"].expires == now + HOLD_SECONDS
    assert book.maybes == [(1, 1, now + MAX_GRACE_SECONDS), (1, 1, now + 3)]


def test_a_store_claims_its_own_grace_up_to_the_cap() -> None:
    """issue 18 break 6: read_timeout_seconds=3600, max_attempts=20 is 20 hours of
    worst case; the lease claims MAX_GRACE_SECONDS."""
    assert claimable_grace(109.0) == 109.0
    assert claimable_grace(20 * (3 + 3600) + 10) == MAX_GRACE_SECONDS
    assert claimable_grace(float("inf")) == MAX_GRACE_SECONDS
    assert claimable_grace(float("nan")) == MAX_GRACE_SECONDS


def test_damage_is_a_value_error_that_names_the_cause() -> None:
    with pytest.raises(ValueError, match="KeyError"):
        Ledger.parse(body(leases={"a": {"bytes": 1, "files": 1}}))


# -- capacity and expiry -----------------------------------------------------------------


def test_free_capacity_counts_committed_usage_other_leases_and_holds() -> None:
    book = Ledger(
        bytes=100,
        files=10,
        leases={"me": Lease(50, 5, expires=1), "other": Lease(20, 2, expires=1)},
        holds={"dead": Lease(7, 1, expires=1)},
    )
    assert book.reserved() == (77, 8)
    assert book.reserved(exclude="me") == (27, 3)
    assert book.free(1000, 100, exclude="me") == (1000 - 100 - 27, 100 - 10 - 3)
    assert book.free(1000, 100, exclude=None) == (1000 - 100 - 77, 100 - 10 - 8)
    assert book.live_others("me") == 1
    assert book.live_others("stranger") == 2


def test_a_lease_expires_only_past_its_expiry_plus_its_grace() -> None:
    book = Ledger(
        leases={"a": Lease(expires=100.0, grace=10.0), "b": Lease(expires=50.0, grace=5.0)}
    )
    assert book.expired(55.0) == []  # the boundary itself is not past
    assert book.expired(55.5) == ["b"]
    assert book.expired(110.0) == ["b"]
    assert sorted(book.expired(110.5)) == ["a", "b"]


def test_a_reclaimed_lease_keeps_what_it_held_for_journaled_saves_as_a_hold() -> None:
    book = Ledger(
        leases={
            "held": Lease(100, 9, held_bytes=30, held_files=2, expires=1.0),
            "plain": Lease(100, 9, expires=1.0),
            "empty": Lease(100, 9, held_files=1, expires=1.0),  # held for an empty file
            "live": Lease(5, 1, expires=500.0),
        },
        holds={"stale": Lease(1, 1, expires=199.0), "fresh": Lease(1, 1, expires=200.0)},
    )
    book.reclaim(["held", "plain", "empty"], server_low=200.0)
    assert set(book.leases) == {"live"}
    assert book.holds["held"] == Lease(30, 2, expires=200.0 + HOLD_SECONDS)
    assert "plain" not in book.holds  # held nothing: nothing kept
    assert book.holds["empty"] == Lease(0, 1, expires=200.0 + HOLD_SECONDS)
    assert "stale" not in book.holds  # a hold lasts to its expiry, and no longer
    assert "fresh" in book.holds


# -- recounts, maybes and drift ----------------------------------------------------------


def test_a_recount_sets_committed_usage_from_the_listing_and_starts_a_generation() -> None:
    book = Ledger(bytes=999, files=99, generation=5, drift=True)
    book.rebase(listed_bytes=40, listed_files=4, server_low=1000.5)
    assert (book.bytes, book.files, book.drift, book.rebased_at) == (40, 4, False, 1000.5)
    # Generations follow the server's clock: a ledger rebuilt from nothing is still newer.
    assert book.generation == 1000500
    book.rebase(listed_bytes=40, listed_files=4, server_low=1000.5)
    assert book.generation == 1000501  # and always grow


def test_a_recount_adds_back_maybes_until_their_horizon_inclusive() -> None:
    book = Ledger(maybes=[(1, 10, 60.0), (2, 20, 59.9)])
    book.rebase(listed_bytes=5, listed_files=1, server_low=60.0)
    assert book.maybes == [(1, 10, 60.0)]  # may still land at 60: the listing may miss it
    assert (book.files, book.bytes, book.drift) == (2, 15, True)


def test_drift_is_repaired_at_a_quiet_moment_or_after_the_drift_period() -> None:
    quiet = Ledger(drift=True, rebased_at=0.0, leases={"me": Lease(expires=1)})
    assert quiet.repairs_drift("me", server_low=RECOUNT_SECONDS, own_drift=False)
    busy = Ledger(drift=True, rebased_at=0.0, leases={"me": Lease(), "other": Lease()})
    assert not busy.repairs_drift("me", server_low=DRIFT_SECONDS, own_drift=False)
    assert busy.repairs_drift("me", server_low=DRIFT_SECONDS + 0.1, own_drift=False)
    held = Ledger(drift=True, holds={"dead": Lease(1, 1, expires=9)})
    assert not held.repairs_drift("me", server_low=RECOUNT_SECONDS, own_drift=True)  # not quiet


def test_only_a_marked_drift_waits_out_the_period_a_stores_own_drift_needs_quiet() -> None:
    book = Ledger(drift=False, rebased_at=0.0, leases={"me": Lease(), "other": Lease()})
    assert not book.repairs_drift("me", server_low=10 * DRIFT_SECONDS, own_drift=True)
    book.leases.pop("other")
    assert book.repairs_drift("me", server_low=RECOUNT_SECONDS, own_drift=True)
    assert not book.repairs_drift("me", server_low=RECOUNT_SECONDS, own_drift=False)


def test_a_quiet_organization_recounts_at_most_once_per_interval_whatever_its_drift() -> None:
    """issue 18 break 7: drift (maybes until their horizon) at a quiet moment waits for
    RECOUNT_SECONDS since the last recount, which the ledger records for every node."""
    book = Ledger(drift=True, rebased_at=1000.0, maybes=[(1, 1, 5000.0)])
    assert not book.recount_due(1000.0 + RECOUNT_SECONDS - 0.1)
    assert not book.repairs_drift("me", 1000.0 + RECOUNT_SECONDS - 0.1, own_drift=True)
    assert book.repairs_drift("me", 1000.0 + RECOUNT_SECONDS, own_drift=True)
    book.rebase(listed_bytes=0, listed_files=0, server_low=1000.0 + RECOUNT_SECONDS)
    assert book.drift  # the maybe stays counted, and so marks drift ...
    assert not book.repairs_drift("me", 1001.0 + RECOUNT_SECONDS, own_drift=True)  # ... but waits


# -- the rebase rule: what a store's changes count against the latest recount ------------


def delta(seen: int, applied_by: float, *changes: tuple[int, int], **flags: bool) -> Delta:
    made = Delta(seen, applied_by, seq=1, **flags)
    for files, size in changes:
        made.add(files, size)
    return made


def test_a_delta_keeps_increases_and_decreases_apart() -> None:
    made = delta(0, 0.0, (1, 100), (-1, -40), (0, 5))
    assert (made.up_files, made.down_files, made.up_bytes, made.down_bytes) == (1, -1, 105, -40)


def test_changes_made_after_the_store_saw_the_recount_count_whole() -> None:
    made = delta(7, 50.0, (1, 100), (-2, -300))
    assert made.settle(Rebase(generation=7, started=40.0)) == (-1, -200, False)


def test_changes_applied_before_the_listing_began_are_already_in_it() -> None:
    made = delta(6, 39.9, (1, 100), (-2, -300))
    assert made.settle(Rebase(generation=7, started=40.0)) == (0, 0, False)


def test_changes_that_may_or_may_not_be_listed_count_only_their_increases() -> None:
    made = delta(6, 40.0, (1, 100), (-2, -300))
    assert made.settle(Rebase(generation=7, started=40.0)) == (1, 100, True)
    unknown = delta(7, 50.0, (1, 100), (-1, -300), ambiguous=True)
    assert unknown.settle(Rebase(generation=7, started=40.0)) == (1, 100, True)


def test_a_recount_never_turns_a_stores_changes_into_an_under_count() -> None:
    rng = random.Random(17)
    for _ in range(500):
        started = 100.0
        times = sorted(rng.uniform(90.0, 110.0) for _ in range(rng.randint(1, 6)))
        changes = [(rng.choice([-1, 0, 1]), rng.randint(-50, 50)) for _ in times]
        made = delta(0, times[-1], *changes)
        files, size, over = made.settle(Rebase(generation=1, started=started))
        # What the listing begun at `started` surely missed: changes applied after it.
        missed = [change for when, change in zip(times, changes, strict=True) if when >= started]
        assert files >= sum(f for f, _ in missed)
        assert size >= sum(b for _, b in missed)
        assert over == (times[-1] >= started)


# -- a store's account settling into the ledger ------------------------------------------


def test_settling_moves_a_stores_changes_into_the_committed_usage() -> None:
    book = Ledger(bytes=10, files=1, generation=3, leases={"me": Lease(expires=9)})
    first = Delta(3, 5.0, seq=1)
    first.add(1, 100)
    second = Delta(3, 6.0, seq=2)
    second.add(-2, -300)
    account = Account(deltas=[first, second], expires=9.0)
    settled = book.settle(account, "me")
    assert (book.files, book.bytes, book.drift) == (0, -190, False)  # no clamping at zero
    assert (settled.deltas, settled.settled, settled.generation) == ([], 2, 3)
    assert account.deltas == [first, second]  # the original stands until the PUT lands


def test_committed_usage_below_zero_is_recounted_once_a_recount_is_due() -> None:
    """issue 18 break 6: a committed figure below zero that the leases cover (stores
    settled out of order, or planted) is placed by a listing at the first due recount,
    busy organization or not."""
    book = Ledger(files=-1, rebased_at=0.0, leases={"me": Lease(0, 5), "other": Lease(0, 5)})
    book = Ledger.parse(book.dump())  # stored as it is
    assert not book.repairs_drift("me", RECOUNT_SECONDS - 1, own_drift=False)
    assert book.repairs_drift("me", RECOUNT_SECONDS, own_drift=False)


def test_changes_the_ledger_already_holds_are_not_settled_twice() -> None:
    book = Ledger(generation=3, leases={"me": Lease(expires=9, settled=1)})
    landed, later = Delta(3, 5.0, seq=1), Delta(3, 6.0, seq=2)
    landed.add(1, 100)
    later.add(1, 7)
    book.settle(Account(deltas=[landed, later], expires=9.0), "me")
    assert (book.files, book.bytes) == (1, 7)  # seq 1 landed with an update given up for lost


def test_a_recounting_update_weighs_every_change_against_the_recount() -> None:
    book = Ledger(generation=4, rebased_at=10.0, leases={"me": Lease(expires=9, settled=1)})
    landed = Delta(3, 20.0, seq=1)
    landed.add(1, 100)
    book.settle(Account(deltas=[landed], expires=9.0), "me", rebased=True)
    assert (book.files, book.bytes, book.drift) == (1, 100, True)


def test_a_lost_answers_increase_becomes_a_maybe_with_its_horizon() -> None:
    book = Ledger(generation=1, leases={"me": Lease(expires=9)})
    created = Delta(1, 42.0, seq=1, ambiguous=True, pending=True)
    created.add(1, 100)
    deleted = Delta(1, 43.0, seq=2, ambiguous=True, pending=True)
    deleted.add(-1, -100)
    book.settle(Account(deltas=[created, deleted], expires=9.0), "me")
    assert book.maybes == [(1, 100, 42.0)]  # a decrease counts nothing: no maybe
    assert (book.files, book.bytes, book.drift) == (1, 100, True)


def test_a_store_whose_lease_was_reclaimed_loses_its_allowance_and_takes_back_its_hold() -> None:
    book = Ledger(holds={"me": Lease(30, 2, expires=99)})
    account = Account(allowance_bytes=500, allowance_files=5, expires=9.0)
    settled = book.settle(account, "me")
    assert (settled.allowance_bytes, settled.allowance_files) == (0, 0)
    assert book.holds == {}
    fresh = book.settle(Account(allowance_bytes=500, allowance_files=5, expires=0.0), "me")
    assert fresh.allowance_bytes == 500  # no lease yet: nothing was reclaimed


def test_the_lease_covers_allowance_flight_and_holds_and_expires_from_now() -> None:
    account = Account(
        allowance_bytes=100,
        allowance_files=-1,  # overspent by a write that ended up bigger: counts as none
        flying_bytes=20,
        flying_files=1,
        held={"t1": (1, 30), "t2": (2, 5)},  # token -> (files, bytes)
        settled=4,
    )
    assert account.held_totals() == (35, 3)  # (bytes, files)
    book = Ledger()
    book.write_lease(account, "me", now=1000.0, grace=9.0, nonce="n")
    assert book.leases["me"] == Lease(
        bytes=155,
        files=4,
        held_bytes=35,
        held_files=3,
        expires=1000.0 + LEASE_SECONDS,
        grace=9.0,
        nonce="n",
        settled=4,
    )
    assert account.expires == 1000.0 + LEASE_SECONDS


def test_a_lease_marked_for_return_is_dropped_from_the_ledger() -> None:
    book = Ledger(leases={"me": Lease(10, 1, expires=5)})
    account = Account(expires=-1.0)
    book.write_lease(account, "me", now=1000.0, grace=9.0)
    assert ("me" in book.leases, account.expires) == (False, 0.0)


def test_a_landed_release_keeps_only_the_changes_it_did_not_settle() -> None:
    old, new = Delta(1, 1.0, seq=3), Delta(1, 2.0, seq=5)
    account = Account(allowance_bytes=9, allowance_files=9, expires=60.0, settled=2)
    account.deltas = [old, new]
    after = account.after_release(done=3)
    assert (after.deltas, after.settled, after.expires) == ([new], 3, 0.0)
    assert (after.allowance_bytes, after.allowance_files) == (0, 0)
    assert account.after_release(done=1).settled == 2  # the mark never goes back


# -- grants, what a write reports, and the refusals --------------------------------------


def test_a_grant_is_a_share_of_the_free_capacity_that_shrinks_with_live_stores() -> None:
    assert grant_headroom(6400, 0, 1000) == 100  # free/64 for the first store
    assert grant_headroom(6400, 3, 1000) == 25  # and free/(64 * 4) with three others
    assert grant_headroom(6400, 0, 10) == 10  # never above the cap
    assert grant_headroom(6400, 0, 1000, busy=-3) == 100  # a negative busy count is none
    assert grant_headroom(-5, 0, 1000, busy=4) == 0  # nothing free, nothing granted


def test_a_steady_store_gets_its_pace_within_the_busy_share() -> None:
    assert grant_headroom(6400, 3, 1000, expected=60) == 60  # its pace, above free/(64*4)
    assert grant_headroom(6400, 3, 1000, expected=10_000) == 400  # at most 16x the share
    assert grant_headroom(6400, 3, 1000, expected=5) == 25  # never below the share
    assert grant_headroom(6400, 3, 100, expected=300) == 100  # nor above the cap


def test_the_pace_is_what_was_spent_since_the_last_grow_carried_to_the_next_renewal() -> None:
    pace = Pace()
    assert pace.grow(100.0) == (0, 0, 0)  # the first grow: no pace known yet
    for _ in range(10):  # a save of 2 KiB a second
        pace.spent(1, 2048)
    busy, files, size = pace.grow(110.0)
    assert (busy, files, size) == (0, 120, 120 * 2048)  # 10 s apart: not busy; 120 s ahead
    pace.spent(-1, -2048)  # a delete does not slow the pace
    assert pace.grow(111.0) == (1, 0, 0)  # a grow soon after the last one: busy
    points = {round(Books().renew_at) for _ in range(200)}  # the node's, in its books
    assert min(points) >= 21
    assert max(points) <= 39
    assert len(points) > 10  # spread, not all at half-life


def test_a_spend_tells_an_exact_an_unknown_and_an_unanswered_effect_apart() -> None:
    exact, unknown, lost = Spend(), Spend(), Spend()
    exact.effect(-1, -10)
    unknown.unknown(1, 10)
    lost.unanswered(1, 10)
    lost.may_repeat(1, 4)
    assert (exact.done, exact.ambiguous, exact.pending, exact.files, exact.bytes) == (
        True,
        False,
        False,
        -1,
        -10,
    )
    assert (unknown.done, unknown.ambiguous, unknown.pending) == (True, True, False)
    assert (lost.done, lost.ambiguous, lost.pending) == (True, True, True)
    assert (lost.repeat_files, lost.repeat_bytes) == (1, 4)
    assert not Spend().done  # nothing reported: the transaction gives its reservation back


def test_the_file_limit_refusal_names_the_limit_the_counts_and_the_setting() -> None:
    error = files_refused("docs/a.txt", limit=12, stored=10, reserved=2)
    assert isinstance(error, StorageLimitExceededError)
    assert str(error) == (
        "You have reached the ObjectStore limit for files it can save: 12 (10 stored, 2 "
        "reserved by saves in progress), unable to save the new file: 'docs/a.txt'. Delete "
        "keys or raise storage_file_count."
    )


def test_the_byte_limit_refusal_reports_megabytes_and_small_figures_exactly() -> None:
    error = bytes_refused("big", size=3 * MB, limit=10 * MB, used=8 * MB, reserved=500)
    assert isinstance(error, StorageLimitExceededError)
    assert str(error) == (
        "Unable to save 'big' (3.00 MB): it would exceed the storage capacity limit of "
        "10.00 MB (8.00 MB used, 0.00 MB (500 bytes) reserved by saves in progress). "
        "Delete keys or raise storage_limit_bytes."
    )
    exactly_one = str(bytes_refused("k", size=MB, limit=MB - 1, used=0, reserved=0))
    assert "'k' (1.00 MB)" in exactly_one  # from one MB on, no bytes
    assert "limit of 1.00 MB (1048575 bytes)" in exactly_one
