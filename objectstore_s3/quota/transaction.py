"""Quotas by usage accounting in the bucket, exact across processes and machines.

A store spends capacity from its lease in the organization's ledger (ledger.py) without
asking the bucket; every object write carries a precondition, so the write's effect on
usage is known exactly and counted as it happens. `transaction()` is the only way to
spend: it reserves what a write may need, commits the write's real effect when the block
ends, and cancels on the store's own refusal (an interrupt that may follow the request is a
lost answer, never cancelled). The ledger itself is changed only by read-modify-write with
a conditional PUT, retried on 412 (bookkeeper.py). The consistency argument is in
docs/quotas.md.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from objectstore_s3.errors import ObjectStoreError, StorageUnavailableError
from objectstore_s3.transport.base import Backend

from .account import Account
from .bookkeeper import Bookkeeper, Timer
from .books import Shelf
from .grants import Limits, grow, yield_unspent
from .ledger import Ledger
from .spend import Spend, Usage
from .versions import Versioning

__all__ = ["Quota"]

log = logging.getLogger("objectstore_s3")

_MARGIN = 5.0  # seconds before its expiry a lease stops being spent
_BUSY_SECONDS = 5.0  # a lease grown again within this is "busy": its grant doubles
# A renewal is a heartbeat (no ledger update) while the organization was not near a limit
# at the last update (grants.NEAR), and while the books hold at most _MOST_DELTAS
# unsettled changes, none older than _SETTLE_SECONDS; else it goes to the ledger and
# settles them.
_MOST_DELTAS = 32
# A steady store's grant covers its pace for this long (within the busy rule's 16x share):
# two leases, since heartbeats renew it without the ledger; a grow every two minutes.
_PACE_AHEAD = 120.0
_SETTLE_SECONDS = 300.0

Enforcement = Literal["exact", "best_effort", "off"]


class Quota:
    """One store's view of its organization's quota: spending, within the limits."""

    def __init__(
        self,
        records: Backend,
        objects: Backend,
        max_bytes: int,
        max_files: int,
        *,
        enforcement: Enforcement = "exact",
        grace: float = 120.0,
        versioning: Versioning | None = None,
        timer: Timer | None = None,
        shelf: Shelf | None = None,
    ) -> None:
        self._book = Bookkeeper(
            records, objects, grace=grace, versioning=versioning, timer=timer, shelf=shelf
        )
        self.max_bytes = max_bytes
        self.max_files = max_files
        self._limits = Limits(max_bytes, max_files)
        self.enforcement = enforcement
        self._pace = Pace()
        # Whether the organization was near a limit at the last ledger update: renewals
        # then go to the ledger, so that leases yield what they hold unspent.
        self._near = True

    # -- the ledger (kept by the bookkeeper) ----------------------------------------------

    @property
    def lease_id(self) -> str:
        return self._book.lease_id

    @property
    def book(self) -> Bookkeeper:
        """The store's account in the ledger (its state, its conditional updates)."""
        return self._book

    def adopt(self, lease_ids: set[str]) -> None:
        self._book.adopt(lease_ids)

    def close(self) -> None:
        """Let go of the lease's books (after `settle(release=True)`, or without it: as a
        killed process would, leaving its flight to the node's other processes)."""
        self._book.close()

    def reconcile(self) -> Usage:
        return self._book.reconcile()

    def ledger(self) -> Ledger | None:
        return self._book.ledger()

    def list_usage(self) -> Usage:
        return self._book.list_usage()

    # -- spending ------------------------------------------------------------------------

    @contextmanager
    def transaction(
        self, key: str, files: int = 0, size: int = 0, *, held: str | None = None
    ) -> Iterator[Spend]:
        """Reserve room for one write (or use the capacity held under `held`), then count
        what the block reports with `spend.effect()`. Nothing reported, or the store's own
        error (an ObjectStoreError: the write was refused, or resolved and reported), gives
        the reservation back (a held one stays held). Any other exception, BaseException
        included, is a lost answer (`_interrupted`)."""
        spend = Spend()
        if self.enforcement == "off":
            yield spend
            return
        need_files, need_bytes, seen = self._take(key, files, size, held)
        try:
            yield spend
        except BaseException as exc:
            _interrupted(spend, exc, need_files, need_bytes)
            raise
        finally:
            # What the block reported counts even if it then raised (a write whose answer
            # was lost may have landed: its increase is counted before the error leaves).
            if spend.done:
                self._commit(spend, need_files, need_bytes, seen)
            else:
                self._give_back(need_files, need_bytes, held)

    def _commit(self, spend: Spend, need_files: int, need_bytes: int, seen: int) -> None:
        with self._book.lock:
            state = self._book.state
            self._book.fly(-need_files, -need_bytes)
            state.allowance_files += need_files - max(spend.files, 0) - spend.repeat_files
            state.allowance_bytes += need_bytes - max(spend.bytes, 0) - spend.repeat_bytes
            self._pace.spent(spend.files, spend.bytes)
            self._record(spend, seen)

    def keep(
        self, token: str, key: str, files: int, size: int, *, replaces: str | None = None
    ) -> None:
        """Reserve room for a journaled write and hold it under `token` until it is
        uploaded (`transaction(held=token)`) or released. `replaces`: the hold of the
        pending write this one supersedes, given up if (and only if) this one is taken."""
        if self.enforcement == "off":
            return
        with self._book.lock:
            need = self._take(key, files, size, replaces)[:2]
            self._book.fly(-need[0], -need[1])
            self._book.state.held[token] = need

    def release(self, token: str) -> None:
        """A held write will never happen: its capacity returns to the lease."""
        with self._book.lock:
            files, size = self._book.state.held.pop(token, (0, 0))
            self._book.state.allowance_files += files
            self._book.state.allowance_bytes += size

    def _record(self, spend: Spend, seen: int) -> None:
        when = self._book.records.server_time()
        applied_by = when[1] if when else time.time()  # known: a lease was granted on it
        kind = (spend.ambiguous, spend.pending, spend.bounded)
        self._book.record(spend.files, spend.bytes, seen, applied_by, kind)
        if spend.repeat_files or spend.repeat_bytes:
            kind = (True, True, False)
            self._book.record(spend.repeat_files, spend.repeat_bytes, seen, applied_by, kind)

    def _take(self, key: str, files: int, size: int, held: str | None) -> tuple[int, int, int]:
        """Move (files, size) from the allowance (or the hold) into flight; also the
        recount generation seen before the write is sent (a recount the store learns of
        while the write is in flight may or may not include it: see account.Delta)."""
        need_files, need_bytes = max(files, 0), max(size, 0)
        with self._book.lock:
            restore = None
            if held is not None and held in self._book.state.held:
                restore = self._book.state.held.pop(held)
                self._book.state.allowance_files += restore[0]
                self._book.state.allowance_bytes += restore[1]
            try:
                self._cover(key, need_files, need_bytes)
            except BaseException:
                if restore is not None and held is not None:
                    self._book.state.allowance_files -= restore[0]
                    self._book.state.allowance_bytes -= restore[1]
                    self._book.state.held[held] = restore
                raise
            state = self._book.state
            state.allowance_files -= need_files
            state.allowance_bytes -= need_bytes
            self._book.fly(need_files, need_bytes)
            return need_files, need_bytes, state.generation

    def _cover(self, key: str, need_files: int, need_bytes: int) -> None:
        """Make the allowance cover a write, renewing or growing the lease if needed."""
        covered = self._covered(need_files, need_bytes)
        if covered == "renew":
            try:
                self._renew()
            except StorageUnavailableError as exc:
                # The lease is still valid: keep spending it through the outage.
                log.warning("Could not renew the quota lease (%s); spending what it holds", exc)
            covered = self._covered(need_files, need_bytes)
        if covered != "yes":
            self._grow(key, need_files, need_bytes)

    def _give_back(self, files: int, size: int, held: str | None) -> None:
        with self._book.lock:
            state = self._book.state
            self._book.fly(-files, -size)
            if held is not None:
                state.held[held] = (files, size)
            else:
                state.allowance_files += files
                state.allowance_bytes += size

    def _covered(self, files: int, size: int) -> Literal["yes", "renew", "no"]:
        """Whether the allowance covers a write: "renew" past the lease's half-life."""
        state = self._book.state
        if files > state.allowance_files or size > state.allowance_bytes:
            return "no"
        now = self._book.records.server_time()
        # Spend only while the lease surely outlives the write (server clock, upper bound).
        if now is None or now[1] >= state.expires - _MARGIN:
            return "no"
        return "yes" if now[1] < state.expires - self._book.renew_at else "renew"

    # -- the ledger ------------------------------------------------------------------------

    def _grow(self, key: str, files: int, size: int) -> None:
        """Settle and grow the lease so it covers (files, size) plus headroom, or refuse."""
        pace = self._pace.grow(self._book.timer.monotonic())

        def apply(ledger: Ledger, state: Account) -> None:
            need = (key, files, size)
            self._near = grow(ledger, state, self._book.lease_id, self._limits, need, pace)

        self._book.update(apply)

    def _renew(self) -> None:
        """Extend the lease past its renewal point: by a heartbeat (no ledger update) while
        the organization is far from its limits, the bucket keeps no versions and what is
        unsettled is recent and small; else by a ledger update, which settles it and lets
        the lease yield what it holds unspent (`_yield`)."""
        state = self._book.state
        oldest = state.deltas[0].applied_by if state.deltas else math.inf
        when = self._book.records.server_time()
        settle = len(state.deltas) > _MOST_DELTAS or (
            when is not None and when[0] - oldest > _SETTLE_SECONDS
        )
        plain = self._book.versioning.known in (None, "off")
        if self._near or settle or not plain or not self._book.heartbeat():
            self._book.update(self._yield)

    def _yield(self, ledger: Ledger, state: Account) -> None:
        self._near = yield_unspent(ledger, state, self._book.lease_id, self._limits)

    def renew(self, *, when_due: bool = False) -> None:
        """Settle this store's changes and extend its lease (at most one update); `when_due`:
        only past its renewal point (the flusher's rounds: the lease covers what is unsettled)."""
        if self.enforcement == "off":
            return
        with self._book.lock:
            if when_due and self._book.state.expires > 0 and self._covered(0, 0) == "yes":
                return
            if when_due and self._book.state.expires > 0:
                self._renew()
            else:
                self._book.update(self._yield)

    def settle(self, release: bool = False) -> None:
        """Write this store's changes to the ledger; with `release`, give the lease back."""
        if self.enforcement == "off":
            return
        with self._book.lock:
            if release and not self._book.leave():
                # A node's processes share its lease and its books: the last one to leave
                # settles what every one of them did, and gives the lease back. (A job
                # array ending together would otherwise update the ledger once a process.)
                return
            state = self._book.state
            if not state.deltas and not (release and state.expires):
                return

            def apply(ledger: Ledger, state: Account) -> None:
                if release and not state.held and not state.flying_files | state.flying_bytes:
                    state.allowance_bytes = state.allowance_files = 0
                    state.expires = -1.0  # drop the lease from the ledger

            self._book.update(apply)
            if release and self._book.state.expires == 0:
                self._book.forget_beats([self._book.lease_id])


class Pace:
    """How a store has been spending, for the headroom of its next grant: its busy streak
    (grows in a row, each within _BUSY_SECONDS of the one before: each doubles its share)
    and what it spent since its last grow, carried forward _PACE_AHEAD seconds."""

    def __init__(self) -> None:
        self._busy = 0
        self._last_grow = -math.inf
        self._spent = (0, 0)  # (files, bytes) the store's writes added, all told
        self._at_grow = (0, 0)

    def spent(self, files: int, size: int) -> None:
        self._spent = (self._spent[0] + max(files, 0), self._spent[1] + max(size, 0))

    def grow(self, now: float) -> tuple[int, int, int]:
        """At a grow (monotonic `now`): the busy streak, and the files and bytes the store
        would spend at its recent pace in the next _PACE_AHEAD seconds."""
        elapsed = now - self._last_grow
        self._busy = self._busy + 1 if elapsed < _BUSY_SECONDS else 0
        self._last_grow = now
        ahead = _PACE_AHEAD / elapsed if 0 < elapsed < math.inf else 0.0
        files = int((self._spent[0] - self._at_grow[0]) * ahead)
        size = int((self._spent[1] - self._at_grow[1]) * ahead)
        self._at_grow = self._spent
        return self._busy, files, size


def _interrupted(spend: Spend, exc: BaseException, files: int, size: int) -> None:
    """A block ended, unreported, by something other than the store's own error: a
    KeyboardInterrupt, a SystemExit, a signal handler's exception, a bug. The request may
    have been sent and may land (or have landed): a lost answer, whose increase counts as
    a maybe until its horizon and is never given back."""
    if not spend.done and not isinstance(exc, ObjectStoreError):
        spend.unanswered(files, size)
