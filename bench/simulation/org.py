"""An organization of many nodes saving into one bucket, in virtual time: what its quota
accounting costs per save as it grows, and whether a limit is ever passed.

Every simulated process runs the store's real quota code (`Quota`: its lease, its
conditional ledger updates) against the in-memory bucket, which serialises conditional
writes as S3 does; each request takes `latency` virtual seconds each way. Each process
saves a new key once per second (random sizes) until the run ends, and gives its lease
back; the processes of `dead` nodes stop without a word at `kill_at`, holding their
leases, as a killed machine does. The limits are set so the organization fills up during
the run: the figures are reported below 80 % of the limits and between 95 % and 100 %.
"""

from __future__ import annotations

import contextlib
import math
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from objectstore_s3.errors import (
    PreconditionFailedError,
    StorageLimitExceededError,
    StorageUnavailableError,
)
from objectstore_s3.quota import Quota
from objectstore_s3.quota.bookkeeper import LEDGER
from objectstore_s3.quota.books import ProcessShelf
from objectstore_s3.quota.ledger import Ledger
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket

from .clock import VirtualClock, VirtualLock

__all__ = ["Outcome", "Plan", "simulate"]

ORG = "org/"
RECORDS = ".objectstore/org/"


@dataclass(frozen=True)
class Plan:
    """One run: `nodes` x `processes`, each saving once per second for `seconds`."""

    nodes: int
    processes: int = 4
    seconds: float = 60.0
    seed: int = 1
    latency: float = 0.005  # one way, per request
    max_size: int = 2048  # saves are 1..max_size bytes
    fill: float = 0.8  # the limits are this share of what all saves would need
    dead: int = 0  # nodes killed at kill_at, holding their leases
    kill_at: float = 20.0
    grace: float = 109.0  # what a store with the default settings claims
    start_within: float = 10.0  # processes start spread over this many seconds
    shared: bool = True  # a node's processes share one lease (False: a lease each)
    release: bool = True  # processes give their leases back at the end (its requests
    # are not counted: they come after the saves, when the organization is full)


@dataclass
class Phase:
    """Saves and ledger traffic while the organization's usage was in one band."""

    saves: int = 0
    ledger_requests: int = 0
    conflicts: list[int] = field(default_factory=list)  # lost races per ledger update


@dataclass
class Outcome:
    plan: Plan
    max_files: int
    max_bytes: int
    saved: int = 0
    refused: int = 0
    unavailable: int = 0
    files: int = 0  # what the bucket holds, counted as saves land
    bytes: int = 0
    passed: bool = False  # a limit was passed
    first_refusal: float | None = None  # usage (share of a limit) at the first refusal
    ledger_size: int = 0  # the largest the ledger object grew, in bytes
    phases: dict[str, Phase] = field(default_factory=dict)
    dead_leases: set[str] = field(default_factory=set)
    reclaimed_after: float | None = None  # seconds from the kill to the dead leases gone
    real_seconds: float = 0.0
    reached: float = 0.0  # virtual seconds simulated (less than planned: out of real time)

    def band(self) -> str:
        share = max(self.files / self.max_files, self.bytes / self.max_bytes)
        return "below 80%" if share < 0.8 else "95-100%" if share >= 0.95 else "80-95%"

    @staticmethod
    def columns() -> tuple[str, ...]:
        return tuple(Outcome(Plan(nodes=1), 1, 1).row())

    def row(self) -> dict[str, Any]:
        """The figures of the run, for the table."""

        def per_save(phase: Phase) -> float:
            return phase.ledger_requests / phase.saves if phase.saves else math.nan

        def p99(values: list[int]) -> float:
            if len(values) < 2:
                return float(values[0]) if values else math.nan
            return statistics.quantiles(values, n=100, method="inclusive")[98]

        below, near = self.phases.get("below 80%", Phase()), self.phases.get("95-100%", Phase())
        every = [c for phase in self.phases.values() for c in phase.conflicts]
        return {
            "nodes": self.plan.nodes,
            "processes": self.plan.nodes * self.plan.processes,
            "lease per": "node" if self.plan.shared else "process",
            "saves": self.saved,
            "ledger req/save <80%": per_save(below),
            "ledger req/save 95-100%": per_save(near),
            "conflicts/update mean": statistics.fmean(every) if every else math.nan,
            "conflicts/update p99": p99(every),
            "ledger KiB": self.ledger_size / 1024,
            "first refusal at": self.first_refusal,
            "dead reclaimed after s": self.reclaimed_after,
            "limit passed": self.passed,
            "unavailable": self.unavailable,
            "virtual s": self.reached,
            "real s": self.real_seconds,
        }


class _Ledger:
    """The records scope of one process, counting its ledger requests (the ledger's and
    the heartbeats') and lost races (a `Backend` for the quota: the rest passes through)."""

    def __init__(self, inner: MemoryBackend, outcome: Outcome, clock: VirtualClock) -> None:
        self._inner = inner
        self._outcome = outcome
        self._clock = clock
        self._lost = 0
        self.counting = True  # (not the process's last release)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _count(self) -> None:
        if not self.counting:
            return
        self._outcome.phases.setdefault(self._outcome.band(), Phase()).ledger_requests += 1

    def get(self, key: str, **kwargs: Any) -> Any:
        self._count()
        return self._inner.get(key, **kwargs)

    def list(self, prefix: str = "") -> Any:
        self._count()  # the heartbeats, listed before dead leases are reclaimed
        return self._inner.list(prefix)

    def delete(self, key: str, **kwargs: Any) -> Any:
        self._count()
        return self._inner.delete(key, **kwargs)

    def put(self, key: str, data: bytes, **kwargs: Any) -> Any:
        self._count()
        if key != LEDGER:  # a heartbeat: a request of the accounting, never a race
            return self._inner.put(key, data, **kwargs)
        try:
            info = self._inner.put(key, data, **kwargs)
        except PreconditionFailedError:
            self._lost += 1
            self._clock.sleep(self._outcome.plan.latency)  # the 412 travels back too
            raise
        phase = self._outcome.phases.setdefault(self._outcome.band(), Phase())
        if self.counting:
            phase.conflicts.append(self._lost)
        self._lost = 0
        self._outcome.ledger_size = max(self._outcome.ledger_size, len(data))
        return info


def simulate(plan: Plan, timeout: float = 1800.0) -> Outcome:
    """Run `plan` and return its figures: those so far if it ran out of `timeout` real
    seconds (`reached` says how much of the plan's virtual time was simulated)."""
    began = time.perf_counter()
    clock = VirtualClock()
    origin = clock.time()
    bucket = MemoryBucket(clock=clock.time)
    _add_latency(bucket, clock, plan.latency)
    rng = random.Random(plan.seed)
    random.seed(plan.seed)  # the quota's own jitter
    everyone = plan.nodes * plan.processes
    mean = (plan.max_size + 1) / 2
    expected = everyone * (plan.seconds - plan.start_within / 2)
    outcome = Outcome(plan, max(1, int(expected * plan.fill)), int(expected * mean * plan.fill))
    dead = set(rng.sample(range(plan.nodes), plan.dead))
    for node in range(plan.nodes):
        shelf = ProcessShelf(VirtualLock(clock))  # the node's books, as its cache_dir keeps
        for process in range(plan.processes):
            start = clock.time() + rng.uniform(0.0, plan.start_within)
            name = f"n{node}/p{process}"
            actor = _Process(plan, outcome, clock, bucket, name, shelf if plan.shared else None)
            actor.dies = node in dead
            clock.spawn(actor.run, at=start)
    if dead:
        clock.spawn(lambda: _watch(plan, outcome, clock, bucket), at=clock.time())
    with contextlib.suppress(TimeoutError):  # the figures so far: `reached` says how far
        clock.run(timeout)
    outcome.real_seconds = time.perf_counter() - began
    outcome.reached = clock.time() - origin
    return outcome


class _Process:
    """One simulated process: a quota of its own, a save a second."""

    def __init__(
        self,
        plan: Plan,
        outcome: Outcome,
        clock: VirtualClock,
        bucket: MemoryBucket,
        name: str,
        shelf: ProcessShelf | None,
    ) -> None:
        # No lock around `outcome`: one actor runs at a time (clock.py).
        self.plan, self.outcome, self.clock, self.name = plan, outcome, clock, name
        self.objects = MemoryBackend(bucket, ORG)
        self.records = records = _Ledger(MemoryBackend(bucket, RECORDS), outcome, clock)
        self.quota = Quota(
            records,
            self.objects,
            outcome.max_bytes,
            outcome.max_files,
            grace=plan.grace,
            timer=clock,
            shelf=shelf,
        )
        self.rng = random.Random(f"{plan.seed}/{name}")
        self.origin = clock.time()  # made before the run starts
        self.dies = False

    def run(self) -> None:
        end = self.origin + self.plan.seconds
        kill = self.origin + self.plan.kill_at
        index = 0
        while self.clock.time() < end:
            if self.dies and self.clock.time() >= kill:
                self.outcome.dead_leases.add(self.quota.lease_id)
                return  # killed: the lease stays in the ledger
            self._save(f"{self.name}/{index}", self.rng.randint(1, self.plan.max_size))
            index += 1
            self.clock.sleep(self.rng.uniform(0.9, 1.1))
        self.records.counting = False
        if not self.plan.release:
            return
        try:
            self.quota.settle(release=True)
        except StorageUnavailableError:  # (the ledger kept changing: the lease expires)
            self.outcome.unavailable += 1

    def _save(self, key: str, size: int) -> None:
        outcome = self.outcome
        try:
            with self.quota.transaction(key, files=1, size=size) as spend:
                self.objects.put(key, b"x" * size, if_none_match="*")
                spend.effect(1, size)
        except StorageLimitExceededError:
            outcome.refused += 1
            share = max(outcome.files / outcome.max_files, outcome.bytes / outcome.max_bytes)
            if outcome.first_refusal is None:
                outcome.first_refusal = share
            return
        except StorageUnavailableError:
            outcome.unavailable += 1
            return
        outcome.phases.setdefault(outcome.band(), Phase()).saves += 1
        outcome.saved += 1
        outcome.files += 1
        outcome.bytes += size
        if outcome.files > outcome.max_files or outcome.bytes > outcome.max_bytes:
            outcome.passed = True


def _add_latency(bucket: MemoryBucket, clock: VirtualClock, latency: float) -> None:
    """Each request takes `latency` to reach the server and as long to come back; a
    listing, one round trip per page of 1,000 keys."""

    def delay(operation: str, key: str, stage: str) -> None:
        if operation == "ListObjectsV2" and stage == "before":
            pages = 1 + len(bucket.objects) // 1000
            clock.sleep(latency * 2 * pages)
        else:
            clock.sleep(latency)

    bucket.faults.append(delay)


def _watch(plan: Plan, outcome: Outcome, clock: VirtualClock, bucket: MemoryBucket) -> None:
    """Once a second after the kill: are the dead nodes' leases still in the ledger?"""
    origin = clock.time()  # the watcher starts with the run
    killed = origin + plan.kill_at
    clock.sleep(plan.kill_at + 1.0)
    end = origin + plan.seconds
    while clock.time() < end:
        with bucket.lock:
            current = bucket.objects.get(RECORDS + LEDGER)
        if current is not None and outcome.dead_leases:
            leases = Ledger.parse(current.body).leases
            if not outcome.dead_leases & leases.keys():
                outcome.reclaimed_after = clock.time() - killed
                return
        clock.sleep(1.0)
