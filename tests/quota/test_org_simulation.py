"""The organization simulation (bench/simulation): its virtual clock, and the quota's
invariants for an organization of many nodes that fills up while some of them die.

The invariants, not the timings, are asserted: no limit is ever passed, and a killed node's
leases are reclaimed within their documented bound (docs/quotas.md, "Leases, time and dead
stores"). The per-save figures are the benchmark's (`python -m bench.simulation`).
"""

from __future__ import annotations

import threading

import pytest

from bench.simulation.clock import SimulationStopped, VirtualClock
from bench.simulation.org import Plan, simulate
from objectstore_s3.quota.account import LEASE_SECONDS
from objectstore_s3.quota.ledger import RECOUNT_SECONDS


def test_actors_take_turns_in_virtual_time() -> None:
    clock = VirtualClock(start=100.0)
    seen: list[tuple[str, float]] = []

    def actor(name: str, pause: float) -> None:
        for _ in range(3):
            seen.append((name, clock.time()))
            clock.sleep(pause)

    clock.spawn(lambda: actor("slow", 10.0), at=100.0)
    clock.spawn(lambda: actor("fast", 4.0), at=101.0)
    clock.run(timeout=30)
    assert seen == [
        ("slow", 100.0),
        ("fast", 101.0),
        ("fast", 105.0),
        ("fast", 109.0),
        ("slow", 110.0),
        ("slow", 120.0),
    ]
    assert clock.time() == 130.0  # a minute of virtual time, in no real time


def test_an_actors_failure_ends_the_run_and_is_raised() -> None:
    clock = VirtualClock()
    stopped = threading.Event()

    def waits_forever() -> None:
        try:
            while True:
                clock.sleep(1.0)
        except SimulationStopped:
            stopped.set()
            raise

    def fails() -> None:
        clock.sleep(5.0)
        raise RuntimeError("a bug in an actor")

    clock.spawn(waits_forever, at=clock.time())
    clock.spawn(fails, at=clock.time())
    with pytest.raises(RuntimeError, match="a bug in an actor"):
        clock.run(timeout=30)
    assert stopped.wait(10)  # the other actor was told, not left waiting forever


def test_a_run_out_of_real_time_stops_its_actors() -> None:
    clock = VirtualClock()
    clock.spawn(lambda: _forever(clock), at=clock.time())
    with pytest.raises(TimeoutError, match="did not finish"):
        clock.run(timeout=0.5)


def _forever(clock: VirtualClock) -> None:
    while True:
        clock.sleep(0.001)


def test_an_organization_that_fills_up_while_a_node_dies_holds_its_limits() -> None:
    grace = 10.0
    plan = Plan(nodes=12, processes=4, seconds=200.0, seed=7, dead=2, kill_at=20.0, grace=grace)
    outcome = simulate(plan, timeout=600)
    assert outcome.saved > 5000
    assert outcome.refused > 0  # it did reach a limit
    assert not outcome.passed
    assert outcome.files <= outcome.max_files
    assert outcome.bytes <= outcome.max_bytes
    # A dead node's lease expires at most LEASE_SECONDS after its last update, is
    # reclaimed `grace` after that, with a recount, which comes at most RECOUNT_SECONDS
    # after the one before; the watcher looks once a second.
    assert outcome.reclaimed_after is not None
    assert outcome.reclaimed_after <= LEASE_SECONDS + grace + RECOUNT_SECONDS + 2
    assert outcome.unavailable == 0


def test_a_seeded_run_repeats() -> None:
    plan = Plan(nodes=5, processes=2, seconds=40.0, seed=3)
    first, second = simulate(plan, timeout=300), simulate(plan, timeout=300)
    assert (first.saved, first.refused, first.files, first.bytes) == (
        second.saved,
        second.refused,
        second.files,
        second.bytes,
    )


def test_a_hundred_nodes_cost_the_ledger_little_per_save_and_hold_their_limits() -> None:
    """100 nodes x 4 processes fill an organization while a node dies: no limit passed,
    the dead node's lease reclaimed within its bound, and while usage is below 80 % of
    the limits a save costs at most 0.05 ledger requests (heartbeats included): the
    node's processes share a lease, renewals are heartbeats, grants follow a node's pace
    (docs/quotas.md, "The scaling argument"). The figures are virtual time's: the same on
    any machine (a seeded run repeats)."""
    grace = 10.0
    plan = Plan(nodes=100, processes=4, seconds=300.0, seed=5, dead=1, kill_at=20.0, grace=grace)
    outcome = simulate(plan, timeout=600)
    assert outcome.reached >= plan.seconds
    assert outcome.refused > 0  # it did reach a limit
    assert not outcome.passed
    assert outcome.unavailable == 0
    below = outcome.phases["below 80%"]
    assert below.ledger_requests / below.saves <= 0.05
    assert outcome.reclaimed_after is not None
    assert outcome.reclaimed_after <= LEASE_SECONDS + grace + RECOUNT_SECONDS + 2
