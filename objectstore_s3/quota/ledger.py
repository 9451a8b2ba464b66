"""The organization's usage ledger as data: parsing, grants, expiry, rebases. Pure: no I/O.

One small JSON document per organization, outside its keys, changed only by conditional
PUTs (quota.py does the I/O):

    {"version": 2, "bytes": B, "files": F, "generation": G, "rebased_at": T, "drift": false,
     "leases": {"<id>": {"bytes", "files", "held_bytes", "held_files", "expires", "grace",
                         "nonce", "settled"}},
     "holds": {"<id>": {"bytes", "files", "expires"}},
     "maybes": [[files, bytes, until], ...]}

`bytes`/`files` are committed usage; a lease is capacity one live store may spend without
asking (`held_*` of it reserved for its journaled saves); a hold keeps the held part of a
dead store's lease for the replay of its journal; a maybe is an increase counted for a
write whose answer was lost, which may land until `until`: a recount before then adds it
back (the listing may have missed it). Times are the server's clock. Invariant:
actual usage <= committed + leases + holds <= limit. See docs/quotas.md.
"""

from __future__ import annotations

import builtins
import json
import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any

from objectstore_s3.errors import StorageLimitExceededError

__all__ = [
    "Account",
    "Delta",
    "Lease",
    "Ledger",
    "LedgerDamagedError",
    "Rebase",
    "Spend",
    "Usage",
    "bytes_refused",
    "files_refused",
    "grant_headroom",
]

log = logging.getLogger("objectstore_s3")

LEASE_SECONDS = 60.0
HOLD_SECONDS = 3600.0
DRIFT_SECONDS = 600.0  # the longest a known over-count waits for a recount
MB = 1024 * 1024


class LedgerDamagedError(ValueError):
    """The ledger parses as JSON but does not hold what a ledger holds."""


@dataclass
class Lease:
    bytes: int = 0
    files: int = 0
    held_bytes: int = 0
    held_files: int = 0
    expires: float = 0.0
    grace: float = 120.0
    nonce: str = ""  # unique per update: tells a landed update from a lost one
    settled: int = 0  # the holder's changes up to this sequence number are in the ledger

    def as_json(self) -> dict[str, float | str]:
        return {
            "nonce": self.nonce,
            "settled": self.settled,
            "bytes": self.bytes,
            "files": self.files,
            "held_bytes": self.held_bytes,
            "held_files": self.held_files,
            "expires": self.expires,
            "grace": self.grace,
        }


@dataclass(frozen=True)
class Rebase:
    """A recount: committed usage was set from a listing begun at `started` (server time)."""

    generation: int
    started: float


@dataclass
class Ledger:
    bytes: int = 0
    files: int = 0
    generation: int = 0
    rebased_at: float = 0.0
    drift: bool = False
    leases: dict[str, Lease] = field(default_factory=dict)
    holds: dict[str, Lease] = field(default_factory=dict)
    maybes: list[tuple[int, int, float]] = field(default_factory=list)

    # -- reading and writing -------------------------------------------------------------

    @staticmethod
    def parse(body: builtins.bytes) -> Ledger:
        """The ledger in `body`; LedgerDamagedError if it is not a sane ledger."""
        try:
            raw = json.loads(body)
            if not isinstance(raw, dict):
                raise TypeError("not an object")
            ledger = Ledger(
                bytes=_count(raw["bytes"], signed=True),
                files=_count(raw["files"], signed=True),
                generation=_count(raw.get("generation", 0)),
                rebased_at=_time(raw.get("rebased_at", 0.0)),
                drift=bool(raw.get("drift", False)),
                leases={str(k): _lease(v) for k, v in dict(raw.get("leases", {})).items()},
                holds={str(k): _lease(v) for k, v in dict(raw.get("holds", {})).items()},
                maybes=[_maybe(entry) for entry in list(raw.get("maybes", []))],
            )
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
            raise LedgerDamagedError(f"{type(exc).__name__}: {exc}") from exc
        return ledger

    def dump(self) -> builtins.bytes:
        return json.dumps(
            {
                "version": 2,
                "bytes": self.bytes,
                "files": self.files,
                "generation": self.generation,
                "rebased_at": self.rebased_at,
                "drift": self.drift,
                "leases": {k: v.as_json() for k, v in self.leases.items()},
                "holds": {k: v.as_json() for k, v in self.holds.items()},
                "maybes": [list(entry) for entry in self.maybes],
            },
            sort_keys=True,
        ).encode()

    # -- capacity -------------------------------------------------------------------------

    def reserved(self, exclude: str | None = None) -> tuple[int, int]:
        """(bytes, files) reserved by leases (but `exclude`'s) and holds."""
        parts = [lease for lease_id, lease in self.leases.items() if lease_id != exclude]
        parts += list(self.holds.values())
        return sum(p.bytes for p in parts), sum(p.files for p in parts)

    def free(self, max_bytes: int, max_files: int, exclude: str | None) -> tuple[int, int]:
        reserved_bytes, reserved_files = self.reserved(exclude)
        return (
            max_bytes - self.bytes - reserved_bytes,
            max_files - self.files - reserved_files,
        )

    def expired(self, server_low: float) -> list[str]:
        """Leases whose holders are surely gone: expired, plus their grace, on the server's
        clock (the holder stops spending before `expires`)."""
        return [
            lease_id
            for lease_id, lease in self.leases.items()
            if server_low > lease.expires + lease.grace
        ]

    def reclaim(self, lease_ids: list[str], server_low: float) -> None:
        """Drop dead leases, keeping what they held for journaled saves as holds."""
        for lease_id in lease_ids:
            lease = self.leases.pop(lease_id)
            if lease.held_bytes or lease.held_files:
                self.holds[lease_id] = Lease(
                    lease.held_bytes,
                    lease.held_files,
                    expires=server_low + HOLD_SECONDS,
                )
        for hold_id in [k for k, hold in self.holds.items() if server_low > hold.expires]:
            del self.holds[hold_id]

    def rebase(self, listed_bytes: int, listed_files: int, server_low: float) -> None:
        """Set committed usage from a listing begun at `server_low` (a new generation).
        Writes that may still land are added back: the listing may have missed them."""
        self.maybes = [entry for entry in self.maybes if entry[2] >= server_low]
        self.files = listed_files + sum(entry[0] for entry in self.maybes)
        self.bytes = listed_bytes + sum(entry[1] for entry in self.maybes)
        # Generations grow with the server's clock, so a ledger rebuilt from nothing still
        # gets one newer than any a store has seen.
        self.generation = max(self.generation + 1, int(server_low * 1000))
        self.rebased_at = server_low
        self.drift = bool(self.maybes)

    def live_others(self, lease_id: str) -> int:
        return sum(1 for other in self.leases if other != lease_id)

    def repairs_drift(self, lease_id: str, server_low: float, own_drift: bool) -> bool:
        """Whether `lease_id`'s update should recount now to repair a possible over-count:
        at a quiet moment (no other store holds a lease whose unsettled changes a recount
        could not place), or, in an organization that is never quiet, once DRIFT_SECONDS
        have passed since the last recount (safe with live stores by the rebase rule,
        though their changes may drift again)."""
        if not (self.drift or own_drift):
            return False
        if self.live_others(lease_id) == 0 and not self.holds:
            return True
        return self.drift and server_low - self.rebased_at > DRIFT_SECONDS


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
            return self.up_files + self.down_files, self.up_bytes + self.down_bytes, False
        if self.seen < rebase.generation and self.applied_by < rebase.started:
            return 0, 0, False
        return self.up_files, self.up_bytes, True


@dataclass
class Account:
    """One store's side of the quota: what its lease allows, what is in flight or held
    for journaled saves, and the changes it has not settled. Replaced whole (a copy from
    `settled_into`) only when a ledger update succeeded."""

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

    def settled_into(self, ledger: Ledger, lease_id: str, *, rebased: bool = False) -> Account:
        """A copy of this account after settling its changes into `ledger`. Changes the
        ledger already holds (an update whose answer was lost landed after all) are not
        settled again: its lease says up to which `seq` they are in (`rebased`: this
        update recounted, so every change is weighed against the recount)."""
        account = replace(self, held=dict(self.held), deltas=[])
        lease = ledger.leases.get(lease_id)
        done = lease.settled if lease is not None and not rebased else 0
        if account.expires > 0 and lease is None:
            # The lease was reclaimed (the store was idle past it): its allowance is gone;
            # what it held for journaled saves was kept as a hold, which it takes back.
            log.warning("Object Store quota lease expired; continuing with a new one")
            account.allowance_bytes = account.allowance_files = 0
            ledger.holds.pop(lease_id, None)
        rebase = Rebase(ledger.generation, ledger.rebased_at)
        for delta in self.deltas:
            account.settled = max(account.settled, delta.seq)
            if delta.seq <= done:
                continue
            # No clamping at zero: stores settle in any order, so the committed figures
            # may dip below zero for a while (one store's delete settled before another
            # store's create of the same object); only their sum with the leases matters.
            files, size, over = delta.settle(rebase)
            ledger.files += files
            ledger.bytes += size
            ledger.drift = ledger.drift or over
            if delta.pending and (files > 0 or size > 0):
                ledger.maybes.append((files, size, delta.applied_by))
        account.generation = ledger.generation
        return account

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

    def write_lease(
        self, ledger: Ledger, lease_id: str, now: float, grace: float, nonce: str = ""
    ) -> None:
        """Put this account's lease in `ledger`, expiring LEASE_SECONDS from `now`."""
        if self.expires < 0:
            ledger.leases.pop(lease_id, None)
            self.expires = 0.0
            return
        held_bytes, held_files = self.held_totals()
        ledger.leases[lease_id] = Lease(
            bytes=max(self.allowance_bytes, 0) + self.flying_bytes + held_bytes,
            files=max(self.allowance_files, 0) + self.flying_files + held_files,
            held_bytes=held_bytes,
            held_files=held_files,
            expires=now + LEASE_SECONDS,
            grace=grace,
            nonce=nonce,
            settled=self.settled,
        )
        self.expires = now + LEASE_SECONDS


def grant_headroom(free: int, live_others: int, cap: int, busy: int = 0) -> int:
    """Extra capacity granted beyond a save's need: a share of what is free that shrinks
    as more stores are live. Stores that start one after another (and may die holding
    their leases) thus reserve together about free/64 * H(n): 5.6% for 20 of them.
    `busy`: how many times in a row the store grew its lease soon after the last time;
    each doubles the share, up to 16x (free/4 per live store), so a store that keeps
    saving updates the ledger rarely, and only such a store can hold more if it dies."""
    if free <= 0:
        return 0
    share = (free << min(max(busy, 0), 4)) // (64 * (live_others + 1))
    return max(0, min(share, cap))


def _count(value: Any, signed: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    if not math.isfinite(value) or abs(value) > 2**62 or (value < 0 and not signed):
        raise ValueError(f"out of range: {value}")
    return int(value)


def _time(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"expected a time, got {value!r}")
    return float(value)


def _maybe(raw: Any) -> tuple[int, int, float]:
    files, size, until = raw
    return _count(files), _count(size), _time(until)


def _lease(raw: Any) -> Lease:
    if not isinstance(raw, dict):
        raise TypeError("a lease is an object")
    return Lease(
        bytes=_count(raw["bytes"]),
        files=_count(raw["files"]),
        held_bytes=_count(raw.get("held_bytes", 0)),
        held_files=_count(raw.get("held_files", 0)),
        expires=_time(raw["expires"]),
        grace=_time(raw.get("grace", 120.0)),
        nonce=str(raw.get("nonce", "")),
        settled=_count(raw.get("settled", 0)),
    )


# -- what a write reports, and the refusals at a limit -------------------------------


def _mb(size: int) -> str:
    """LEAN reports sizes in MB; small figures also get their exact bytes."""
    return f"{size / MB:.2f} MB" if size >= MB else f"{size / MB:.2f} MB ({size} bytes)"


@dataclass(frozen=True)
class Usage:
    bytes: int
    files: int


@dataclass
class Spend:
    """What one write did to usage, told by the code inside `Quota.transaction`."""

    files: int = 0
    bytes: int = 0
    done: bool = False
    ambiguous: bool = False
    pending: bool = False  # may still be applied later (its answer was lost)
    repeat_files: int = 0  # increases an earlier attempt, still in flight, may yet make
    repeat_bytes: int = 0

    def may_repeat(self, files: int, size: int) -> None:
        """Besides its effect, a timed-out attempt of the write may still land later and
        increase usage by at most (files, size): counted as a maybe."""
        self.repeat_files, self.repeat_bytes = files, size

    def effect(self, files: int, size: int) -> None:
        """The write happened and changed usage by exactly (files, size)."""
        self.files, self.bytes, self.done = files, size, True

    def unknown(self, files: int, size: int) -> None:
        """The write's effect is decided but not known (a create or an overwrite, a delete
        by us or by another): only the increase is counted, until a recount."""
        self.files, self.bytes, self.done, self.ambiguous = files, size, True, True

    def unanswered(self, files: int, size: int) -> None:
        """The write was sent and its answer lost: it may have happened, or happen yet (a
        slow server). Its increase counts until its horizon, recounts included."""
        self.unknown(files, size)
        self.pending = True


def files_refused(key: str, limit: int, stored: int, reserved: int) -> StorageLimitExceededError:
    return StorageLimitExceededError(
        f"You have reached the ObjectStore limit for files it can save: {limit} ({stored} "
        f"stored, {reserved} reserved by saves in progress), unable to save the new file: "
        f"'{key}'. Delete keys or raise storage_file_count."
    )


def bytes_refused(
    key: str, size: int, limit: int, used: int, reserved: int
) -> StorageLimitExceededError:
    return StorageLimitExceededError(
        f"Unable to save '{key}' ({_mb(size)}): it would exceed the storage capacity limit "
        f"of {_mb(limit)} ({_mb(used)} used, {_mb(reserved)} reserved by saves in progress). "
        "Delete keys or raise storage_limit_bytes."
    )
