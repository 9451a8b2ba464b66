"""The organization's usage ledger as data: parsing, grants, expiry, rebases. Pure: no I/O.

One small JSON document per organization, outside its keys, changed only by conditional
PUTs (bookkeeper.py does the I/O):

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
actual usage <= committed + leases + holds <= limit. What no store writes (a non-finite
figure, a negative one but committed usage within what the leases reserve, a grace past
MAX_GRACE_SECONDS, a time past the longest a store sets) is damage, repaired from a
listing; recounts other than repairs and requests come at most once per RECOUNT_SECONDS.
See docs/quotas.md.

A store's own side (its lease, its unsettled changes and how they settle) is in
account.py; what a write reports, and the refusals at a limit, in spend.py.
"""

from __future__ import annotations

import builtins
import json
import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any

from .account import HOLD_SECONDS, LEASE_SECONDS, MAX_GRACE_SECONDS, Account, Lease, Rebase

__all__ = [
    "DRIFT_SECONDS",
    "RECOUNT_SECONDS",
    "SKEW_SECONDS",
    "Ledger",
    "LedgerDamagedError",
    "grant_headroom",
    "lease_end",
]

log = logging.getLogger("objectstore_s3")

DRIFT_SECONDS = 600.0  # the longest a known over-count waits for a recount
# The least time between two recounts of an organization made on their own (drift, dead
# leases), across every process and node: the ledger records when the last one began.
RECOUNT_SECONDS = 60.0
# How far past the longest a store sets a time in the ledger may be and still be a server's
# clock (front ends that disagree a little) rather than damage.
SKEW_SECONDS = 900.0


class LedgerDamagedError(ValueError):
    """The ledger parses as JSON but does not hold what a ledger holds."""


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

    # -- a store's account in the ledger ----------------------------------------------

    def settle(self, owner: Account, lease_id: str, *, rebased: bool = False) -> Account:
        """A copy of the store's account `owner` after settling its changes into this
        ledger. Changes the ledger already holds (an update whose answer was lost landed
        after all) are not settled again: its lease says up to which `seq` they are in
        (`rebased`: this update recounted, so every change is weighed against the recount)."""
        account = replace(owner, held=dict(owner.held), deltas=[])
        lease = self.leases.get(lease_id)
        done = lease.settled if lease is not None and not rebased else 0
        if account.expires > 0 and lease is None:
            # The lease was reclaimed (the store was idle past it): its allowance is gone;
            # what it held for journaled saves was kept as a hold, which it takes back.
            log.warning("Object Store quota lease expired; continuing with a new one")
            account.allowance_bytes = account.allowance_files = 0
            self.holds.pop(lease_id, None)
        rebase = Rebase(self.generation, self.rebased_at)
        for delta in owner.deltas:
            account.settled = max(account.settled, delta.seq)
            if delta.seq <= done:
                continue
            # No clamping at zero: stores settle in any order, so the committed figures
            # may dip below zero for a while (one store's delete settled before another
            # store's create of the same object); only their sum with the leases matters
            # (never negative: see `parse`), and a dip is recounted once one is due.
            files, size, over = delta.settle(rebase)
            self.files += files
            self.bytes += size
            self.drift = self.drift or over
            if delta.pending and (files > 0 or size > 0):
                self.maybes.append((files, size, delta.applied_by))
        account.generation = self.generation
        return account

    def write_lease(
        self, owner: Account, lease_id: str, now: float, grace: float, nonce: str = ""
    ) -> None:
        """Put the lease of the store's account `owner` in this ledger, expiring
        LEASE_SECONDS from `now` (the account learns its new expiry)."""
        if owner.expires < 0:
            self.leases.pop(lease_id, None)
            owner.expires = 0.0
            return
        held_bytes, held_files = owner.held_totals()
        self.leases[lease_id] = Lease(
            bytes=max(owner.allowance_bytes, 0) + owner.flying_bytes + held_bytes,
            files=max(owner.allowance_files, 0) + owner.flying_files + held_files,
            held_bytes=held_bytes,
            held_files=held_files,
            expires=now + LEASE_SECONDS,
            grace=grace,
            nonce=nonce,
            settled=owner.settled,
        )
        owner.expires = now + LEASE_SECONDS

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
            # Actual usage <= committed + leases + holds, so that sum is never negative: a
            # committed figure below minus what the leases reserve is no store's.
            reserved_bytes, reserved_files = ledger.reserved()
            if ledger.bytes + reserved_bytes < 0 or ledger.files + reserved_files < 0:
                raise ValueError(f"negative usage: {ledger.files} files, {ledger.bytes} bytes")
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
            raise LedgerDamagedError(f"{type(exc).__name__}: {exc}") from exc
        return ledger

    def bound(self, server_high: float) -> None:
        """Hold the ledger's times to what stores write, at `server_high` (the upper bound
        of the server's clock): one past the longest a store sets (a lease's LEASE_SECONDS,
        a hold's HOLD_SECONDS, a maybe's MAX_GRACE_SECONDS from now; a recount begun by now)
        by more than SKEW_SECONDS is damage (LedgerDamagedError); a lesser excess is cut
        back to that longest, so nothing outlasts its documented bound."""
        late = server_high + SKEW_SECONDS
        if self.rebased_at > late or self.generation > late * 1000:
            raise LedgerDamagedError(
                f"the last recount is dated {self.rebased_at - server_high:.0f} s ahead of "
                f"the server's clock (generation {self.generation})"
            )
        for kind, entries, longest in (
            ("lease", self.leases, LEASE_SECONDS),
            ("hold", self.holds, HOLD_SECONDS),
        ):
            for entry in entries.values():
                entry.expires = _cut(entry.expires, server_high + longest, kind)
        self.maybes = [
            (files, size, _cut(until, server_high + MAX_GRACE_SECONDS, "maybe"))
            for files, size, until in self.maybes
        ]

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

    def extend(self, beats: dict[str, float]) -> None:
        """Extend each lease to where its heartbeat took it (`beats`: Last-Modified by
        lease, docs/quotas.md, "Heartbeats"), listed after the `server_low` that `expired`
        is then asked with: any heartbeat its holder sent before its lease ended has
        landed by then (within grace), so the lease is dead only if none extended it."""
        for lease_id, beat in beats.items():
            lease = self.leases.get(lease_id)
            if lease is not None:
                lease.expires = lease_end(lease.expires, beat)

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

    def recount_due(self, server_low: float) -> bool:
        """Whether a recount may be made on the ledger's own account (drift, dead leases):
        RECOUNT_SECONDS after the last one began, whoever made it. So listings cost O(1)
        requests per save amortized, whatever the number of maybes; until then a maybe
        stays counted and a dead lease stays reserved (the safe side)."""
        return server_low - self.rebased_at >= RECOUNT_SECONDS

    def repairs_drift(self, lease_id: str, server_low: float, own_drift: bool) -> bool:
        """Whether `lease_id`'s update should recount now, once a recount is due: to place
        committed figures below zero (settled out of order, or planted: the leases cover
        them, but only a listing can tell), or to repair a possible over-count at a quiet
        moment (no other store holds a lease whose unsettled changes a recount could not
        place), or, in an organization that is never quiet, once DRIFT_SECONDS have passed
        since the last recount (safe with live stores by the rebase rule, though their
        changes may drift again)."""
        if not self.recount_due(server_low):
            return False
        if self.files < 0 or self.bytes < 0:
            return True
        if not (self.drift or own_drift):
            return False
        if self.live_others(lease_id) == 0 and not self.holds:
            return True
        return self.drift and server_low - self.rebased_at > DRIFT_SECONDS


def lease_end(expires: float, beat: float | None) -> float:
    """When a lease ends: its `expires` as last written to the ledger, or later, when its
    holder's last heartbeat (Last-Modified `beat`) extended it."""
    return expires if beat is None else max(expires, beat + 1.0 + LEASE_SECONDS)


def grant_headroom(free: int, live_others: int, cap: int, busy: int = 0, expected: int = 0) -> int:
    """Extra capacity granted beyond a save's need: a share of what is free that shrinks
    as more stores are live. Stores that start one after another (and may die holding
    their leases) thus reserve together about free/64 * H(n): 5.6% for 20 of them.
    `busy`: how many times in a row the store grew its lease soon after the last time;
    each doubles the share, up to 16x (free/4 per live store), so a store that keeps
    saving updates the ledger rarely, and only such a store can hold more if it dies.
    `expected`: what the store spent at its recent pace until its next renewal; it gets
    that much, within the same 16x: a store saving steadily but not in bursts (once a
    second) would otherwise alternate small and large grants, and update the ledger every
    few saves however many stores there are."""
    if free <= 0:
        return 0
    per_store = 64 * (live_others + 1)
    share = (free << min(max(busy, 0), 4)) // per_store
    share = max(share, min(expected, (free << 4) // per_store))
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


def _grace(value: Any) -> float:
    grace = _time(value)
    if not 0 <= grace <= MAX_GRACE_SECONDS:
        raise ValueError(f"a grace of {grace} s is past the cap of {MAX_GRACE_SECONDS:.0f} s")
    return grace


def _cut(when: float, longest: float, kind: str) -> float:
    """`when`, at most `longest`; damage if past it by more than SKEW_SECONDS."""
    if when > longest + SKEW_SECONDS:
        raise LedgerDamagedError(
            f"a {kind} ends {when - longest:.0f} s past the longest any store sets"
        )
    return min(when, longest)


def _maybe(raw: Any) -> tuple[int, int, float]:
    files, size, until = raw
    return _count(files), _count(size), _time(until)


def _lease(raw: Any) -> Lease:
    if not isinstance(raw, dict):
        raise TypeError("a lease is an object")
    fast = _lease_fast(raw)
    if fast is not None:
        return fast
    return Lease(
        bytes=_count(raw["bytes"]),
        files=_count(raw["files"]),
        held_bytes=_count(raw.get("held_bytes", 0)),
        held_files=_count(raw.get("held_files", 0)),
        expires=_time(raw["expires"]),
        grace=_grace(raw.get("grace", 120.0)),
        nonce=str(raw.get("nonce", "")),
        settled=_count(raw.get("settled", 0)),
    )


_MOST = 2**62


def _lease_fast(raw: dict[str, Any]) -> Lease | None:
    """The lease in `raw` if every figure is plainly sane (what stores write), else None
    for `_lease`'s checks one by one, which name what is wrong. A ledger holds a lease per
    node: parsing them is most of an update's CPU in a large organization."""
    try:
        counts = (raw["bytes"], raw["files"], raw["held_bytes"], raw["held_files"])
        settled, expires, grace = raw["settled"], raw["expires"], raw["grace"]
        nonce = raw["nonce"]
    except KeyError:
        return None
    for value in (*counts, settled):
        if type(value) is not int or not 0 <= value <= _MOST:
            return None
    for value in (expires, grace):
        if type(value) not in (float, int) or not math.isfinite(value):
            return None
    if not 0 <= grace <= MAX_GRACE_SECONDS or type(nonce) is not str:
        return None
    return Lease(*counts, expires=float(expires), grace=float(grace), nonce=nonce, settled=settled)
