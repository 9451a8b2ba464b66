"""One store's side of the ledger: its lease, its unsettled changes, how they settle. Pure.

A `Lease` is capacity the ledger grants one live store, as the ledger records it. The
store's `Account` is what it may spend of that lease, what is in flight or held for its
journaled saves, and its `Delta`s: the changes it has not settled yet. Settling weighs
each delta against the latest recount (`Rebase`) by the rebase rule of docs/quotas.md, so
a recount made while stores are live never subtracts a change twice. No I/O here: the
transaction (transaction.py, bookkeeper.py) reads and writes the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "HOLD_SECONDS",
    "LEASE_SECONDS",
    "MAX_GRACE_SECONDS",
    "Account",
    "Delta",
    "Lease",
    "Rebase",
    "claimable_grace",
]


LEASE_SECONDS = 60.0
HOLD_SECONDS = 3600.0
# The longest grace any store may claim for its lease (and the longest horizon of a write
# whose answer was lost), whatever its settings: a dead store's lease is reclaimed within
# LEASE_SECONDS + MAX_GRACE_SECONDS (+ the recount interval) of its last renewal.
MAX_GRACE_SECONDS = 600.0


def claimable_grace(grace: float) -> float:
    """The grace a store claims for its lease: its own worst case of one write, capped."""
    if grace != grace or grace < 0:  # NaN or negative: no sane worst case, assume the cap
        return MAX_GRACE_SECONDS
    return min(grace, MAX_GRACE_SECONDS)


@dataclass
class Lease:
    """Capacity the ledger grants one store (or, as a hold, keeps for a dead one's journal)."""

    bytes: int = 0
    files: int = 0
    held_bytes: int = 0
    held_files: int = 0
    expires: float = 0.0
    grace: float = 120.0
    nonce: str = ""  # unique per update: tells a landed update from a lost one
    settled: int = 0  # the holder's changes up to this sequence number are in the ledger

    def as_json(self) -> dict[str, Any]:
        # (by hand: dataclasses.asdict deep-copies, and a ledger holds a lease per node)
        return {
            "bytes": self.bytes,
            "files": self.files,
            "held_bytes": self.held_bytes,
            "held_files": self.held_files,
            "expires": self.expires,
            "grace": self.grace,
            "nonce": self.nonce,
            "settled": self.settled,
        }


@dataclass(frozen=True)
class Rebase:
    """A recount: committed usage was set from a listing begun at `started` (server time)."""

    generation: int
    started: float


@dataclass
class Delta:
    """Usage changes one store made and has not settled, grouped by when they happened.

    `seen` is the rebase generation the store had observed before making them, and
    `applied_by` an upper bound (server clock) on when the last of them was applied.
    Positive and negative parts are kept apart, for the safe rule of `settle`. `seq`
    numbers a store's deltas: its lease records the last one settled, so an update that
    lands after the store gave it up for lost is never settled twice.
    """

    seen: int
    applied_by: float
    seq: int
    up_bytes: int = 0
    up_files: int = 0
    down_bytes: int = 0
    down_files: int = 0
    ambiguous: bool = False
    pending: bool = False  # a lost answer: may still be applied up to `applied_by`
    bounded: bool = False  # upper bounds of the real changes (spend.at_most): drift

    def add(self, files: int, size: int) -> None:
        self.up_files += max(files, 0)
        self.down_files += min(files, 0)
        self.up_bytes += max(size, 0)
        self.down_bytes += min(size, 0)

    def settle(self, rebase: Rebase) -> tuple[int, int, bool]:
        """(files, bytes) to add to the committed usage, and whether that may over-count.

        Against the latest recount: changes made after the store saw it count whole;
        changes applied before its listing began are already in it; any others may or
        may not be, so only their increases count (an over-count, never an under-count).
        """
        if self.seen >= rebase.generation and not self.ambiguous:
            whole = self.up_files + self.down_files, self.up_bytes + self.down_bytes
            return whole[0], whole[1], self.bounded
        if self.seen < rebase.generation and self.applied_by < rebase.started:
            return 0, 0, False
        return self.up_files, self.up_bytes, True


@dataclass
class Account:
    """One store's side of the quota: what its lease allows, what is in flight or held
    for journaled saves, and the changes it has not settled. Replaced whole (a copy from
    `Ledger.settle`) only when a ledger update succeeded."""

    allowance_bytes: int = 0
    allowance_files: int = 0
    held: dict[str, tuple[int, int]] = field(default_factory=dict)  # token -> (files, bytes)
    flying_bytes: int = 0
    flying_files: int = 0
    deltas: list[Delta] = field(default_factory=list)
    generation: int = 0
    expires: float = 0.0  # server clock; 0: no lease yet; -1: give it back
    settled: int = 0  # the last Delta.seq the ledger holds

    def held_totals(self) -> tuple[int, int]:
        return sum(b for _, b in self.held.values()), sum(f for f, _ in self.held.values())

    def after_release(self, done: int) -> Account:
        """This account once a release that settled deltas up to `done` has landed."""
        deltas = [delta for delta in self.deltas if delta.seq > done]
        return replace(
            self,
            deltas=deltas,
            allowance_bytes=0,
            allowance_files=0,
            expires=0.0,
            settled=max(self.settled, done),
        )
