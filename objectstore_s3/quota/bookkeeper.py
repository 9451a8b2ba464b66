"""One store's account in the organization's ledger, kept by conditional updates.

The ledger (ledger.py) lives in the bucket as one object, changed only by read-modify-
write with a conditional PUT (If-Match, or If-None-Match: * to create it), retried with
jitter on 412. An update whose answer was lost is told apart from one that did not land by
the nonce it wrote into this store's lease (or the lease's absence after a release); one
that lands after it was given up is never settled twice, by the lease's `settled` mark.
A recount sets the committed usage from a listing (a missing or damaged ledger, or on
request; a reclaimed lease or drift at most once per RECOUNT_SECONDS). The argument is in
docs/quotas.md. Spending (the transaction, the limits) is `Quota`'s, in transaction.py.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from objectstore_s3.errors import (
    KeyNotFoundError,
    OutcomeUnknownError,
    PreconditionFailedError,
    StorageUnavailableError,
)
from objectstore_s3.transport.base import Backend, ObjectInfo

from .account import LEASE_SECONDS, Account, claimable_grace
from .books import Books, ProcessShelf, Shelf
from .holder import Holder
from .ledger import Ledger, LedgerDamagedError
from .spend import Usage
from .versions import Replaced, Versioning, versioned_usage

__all__ = ["BEATS", "LEDGER", "Bookkeeper", "SystemTimer", "Timer"]

log = logging.getLogger("objectstore_s3")

LEDGER = "usage.json"
# A lease's heartbeat: an empty object whose Last-Modified (the server's clock) extends the
# lease without touching the ledger (docs/quotas.md, "Heartbeats").
BEATS = "leases/"
_MAX_CONFLICTS = 60
# A lost race waits a random time below a ceiling that doubles with each loss in a row
# ("full jitter"): with many stores updating at once, a flat jitter makes every loser come
# back together, and the ledger's conflicts per update grow with the number of stores
# (the simulation in bench/simulation measured 25 at p99 with 120 processes).
_BACKOFF_FIRST = 0.01
_BACKOFF_MOST = 1.0


def conflict_backoff(lost: int) -> float:
    """Seconds to wait after the `lost`-th lost race in a row of one update."""
    ceiling = min(_BACKOFF_MOST, _BACKOFF_FIRST * 2.0 ** (lost - 1))
    return random.uniform(0.002, max(0.002, ceiling))  # noqa: S311  (jitter)


# Updates whose answer was lost (each already retried max_attempts times) before the
# error is raised: like commit.py's, so one call's time stays bounded by the settings.
_MAX_UNANSWERED = 3


class Timer(Protocol):
    """How the quota paces itself (backoff between lost races, a busy store's growth):
    the system's time, or a simulation's virtual time (bench/simulation)."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemTimer:
    """The process's own clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def forget_beats(records: Backend, lease_ids: list[str]) -> None:
    """Delete the heartbeats of leases gone (best effort: an orphan is never read)."""
    for lease_id in lease_ids:
        try:
            records.delete(BEATS + lease_id)
        except (StorageUnavailableError, OutcomeUnknownError, KeyNotFoundError) as exc:
            log.debug("A stale quota heartbeat stays (%s)", exc)


def listed_beats(records: Backend, server_low: float) -> dict[str, float]:
    """Each heartbeat's Last-Modified (unknown: `server_low`, the safe side)."""
    beats = {}
    for info in records.list(BEATS):
        when = info.last_modified
        beats[info.key[len(BEATS) :]] = server_low if when is None else when
    return beats


class Bookkeeper(Holder):
    """This store's account in the organization's ledger (`state`, guarded by `lock`) and
    its conditional updates; `Quota` spends from the account and asks for updates."""

    def __init__(
        self,
        records: Backend,
        objects: Backend,
        *,
        grace: float,
        versioning: Versioning | None = None,
        timer: Timer | None = None,
        shelf: Shelf | None = None,
    ) -> None:
        self.records = records
        self.timer: Timer = timer if timer is not None else SystemTimer()
        self._objects = objects
        # The bucket's versioning: how a recount lists, and how writes count (commit.py).
        self.versioning = versioning if versioning is not None else Versioning(objects)
        # The grace this store claims (and the horizon of its lost answers): capped, so
        # another store reclaims its lease within the documented bound whatever its settings.
        # The lease's books: this process's own, or shared by the node's processes.
        super().__init__(shelf if shelf is not None else ProcessShelf(), claimable_grace(grace))
        self._adopted: set[str] = set()
        self._switched = False  # the bucket's versioning changed: mark the ledger drift
        # The ledger's versions its updates replace (a bucket that keeps versions).
        self._replaced = Replaced(records, LEDGER)
        self._sweep = False  # a recount was made: sweep the ledger's old versions too

    def server_high(self) -> float:
        when = self.records.server_time()
        return when[1] if when else time.time()

    def adopt(self, lease_ids: set[str]) -> None:
        """Take over the leases of dead processes whose journals this store replays: they
        are reclaimed at the next ledger update (their owners are gone: their journal
        segments were unlocked), and what they held for those saves becomes ours."""
        with self.lock:
            self._adopted |= lease_ids - {self.lease_id}

    def reconcile(self) -> Usage:
        """Recount the organization's usage from a listing (repairs drift)."""
        with self.lock:
            ledger = self.update(lambda ledger, state: None, recount=True)
            return Usage(ledger.bytes, ledger.files)

    def ledger(self) -> Ledger | None:
        """The ledger as stored (None if there is none yet)."""
        try:
            data = self.records.get(LEDGER)
        except KeyNotFoundError:
            return None
        assert data is not None
        return Ledger.parse(data.body)

    def list_usage(self) -> Usage:
        """Bytes and objects under the organization's prefix, from a listing: on a bucket
        that keeps versions (versioning enabled or suspended, asked anew), the bytes of
        every version and the keys whose latest version is not a delete marker."""
        if self.versioning.refresh() != "off":
            return versioned_usage(self._objects.list_versions())
        total = count = 0
        for info in self._objects.list():
            total += info.size
            count += 1
        return Usage(total, count)

    # -- the conditional update ------------------------------------------------------------

    def update(self, apply: Callable[[Ledger, Account], None], *, recount: bool = False) -> Ledger:
        """Read-modify-write the ledger with a conditional PUT, retrying lost races.

        `apply` changes a copy of the ledger and of this store's state; both take effect
        only once the PUT succeeded, so a lost race is never counted twice.
        """
        with self.hold() as books:
            return self._update(books, apply, recount=recount)

    def _update(
        self, books: Books, apply: Callable[[Ledger, Account], None], *, recount: bool
    ) -> Ledger:
        unanswered = 0
        self._bury(books)
        # Every attempt below carries these deltas: none may grow once one was sent (the
        # lease's `settled` mark must cover exactly what an attempt that lands settled).
        books.sealed = max([books.sealed] + [delta.seq for delta in books.account.deltas])
        lost = 0
        for _ in range(_MAX_CONFLICTS):
            ledger, read, damaged = self._load()
            state, nonce = self._next(ledger, apply, recount=recount or damaged)
            written: ObjectInfo | None = None
            try:
                if read is None:
                    written = self.records.put(LEDGER, ledger.dump(), if_none_match="*")
                else:
                    written = self.records.put(LEDGER, ledger.dump(), if_match=read.etag)
            except PreconditionFailedError:
                lost += 1
                self.timer.sleep(conflict_backoff(lost))
                continue
            except OutcomeUnknownError:
                # Sent, unanswered, and changed since by others: our lease's nonce (or its
                # absence, when giving it back) tells whether this update is in.
                releasing = books.lease_id not in ledger.leases
                if not self._landed(None if releasing else nonce):
                    # It may still land: a later load tells (the lease's `settled` mark,
                    # or its absence after a release), so nothing is counted twice.
                    if releasing:
                        books.released = state
                    unanswered += 1
                    if unanswered >= _MAX_UNANSWERED:
                        raise  # the server keeps not answering: report it
                    continue
            books.account, books.released = state, None
            self.forget_beats(self._gone)
            self._adopted.clear()
            self._switched = False
            self._forget_replaced(read, written)
            return ledger
        raise StorageUnavailableError(
            f"The usage ledger kept changing under {_MAX_CONFLICTS} attempts to update it "
            "(many writers at once); try again."
        )

    def _next(
        self, ledger: Ledger, apply: Callable[[Ledger, Account], None], *, recount: bool
    ) -> tuple[Account, str]:
        """Change `ledger` (as just loaded) for one attempt of an update: settle this
        store's changes, reclaim dead leases (with a recount), `apply`, write the lease.
        Returns this store's state as it will be if the attempt lands, and its nonce."""
        books = self._held()
        self._gone: list[str] = []  # the leases this attempt reclaims
        if books.released is not None and books.lease_id not in ledger.leases:
            # A release given up for lost has landed since: what it settled is in.
            books.account = books.account.after_release(books.released.settled)
            books.released = None
        now = self.records.server_time()
        low = now[0] if now else time.time()
        # Dead leases are reclaimed with a recount: when one is due (or made anyway).
        # Dead by the ledger alone, and then by their heartbeats too (listed after `low`
        # was taken: see Ledger.expired); the heartbeats of the living are written into
        # their leases, so the next update lists them only once those are stale again.
        due = recount or ledger.recount_due(low)
        expired = ledger.expired(low) if due else []
        if expired:
            ledger.extend(listed_beats(self.records, low))
            expired = ledger.expired(low)
        expired += [
            lease for lease in self._adopted if lease in ledger.leases and lease != books.lease_id
        ]
        own = any(delta.ambiguous or delta.bounded for delta in self.state.deltas)
        self._switched = self._versioning_changed() or self._switched
        own = own or self._switched
        account = self.state
        rebased = recount or bool(expired)
        rebased = rebased or ledger.repairs_drift(books.lease_id, low, own)
        if rebased:
            self._recount(ledger, low)
            ledger.reclaim(expired, low)
            self._gone = expired
            # What this store recorded exactly was answered before the listing began,
            # so the listing has it; a maybe (a lost answer) may land after it, so its
            # increase still counts until its horizon (Delta.settle).
            maybes = [delta for delta in account.deltas if delta.pending]
            account = replace(account, deltas=maybes, settled=books.sealed)
        state = ledger.settle(account, books.lease_id, rebased=rebased)
        if self._switched and not rebased:
            ledger.drift = True  # writes counted under the old versioning: recount
        for lease in self._adopted:
            hold = ledger.holds.pop(lease, None)
            if hold is not None:
                state.allowance_files += hold.files
                state.allowance_bytes += hold.bytes
        apply(ledger, state)
        nonce = uuid.uuid4().hex[:16]
        grace = max(self.grace, books.grace)  # the lease outlives any member's write
        ledger.write_lease(state, books.lease_id, low, grace, nonce)
        return state, nonce

    def heartbeat(self) -> bool:
        """Extend the lease without a ledger update: a PUT of its heartbeat, which no other
        store writes (no race to lose), listed by whoever would reclaim it. False if it
        did not land (the lease stays as it was)."""
        with self.hold() as books:
            if books.account.expires <= 0:
                return False
            now = self.records.server_time()
            low = now[0] if now else time.time()
            try:
                self.records.put(BEATS + books.lease_id, b"")
            except (StorageUnavailableError, OutcomeUnknownError) as exc:
                log.debug("A quota heartbeat did not land (%s)", exc)
                return False
            # Sent after `low`: applied at or after it, so its Last-Modified + 1 s is too.
            books.account.expires = max(books.account.expires, low + LEASE_SECONDS)
            return True

    def forget_beats(self, lease_ids: list[str]) -> None:
        forget_beats(self.records, lease_ids)

    def _forget_replaced(self, read: ObjectInfo | None, written: ObjectInfo | None) -> None:
        """Delete the ledger's version this update replaced (best effort: quota/versions.py,
        `Replaced`); after a recount, every old version left."""
        after = None if written is None else written.version_id
        self._replaced.written(None if read is None else read.version_id, after)
        if self._sweep:
            self._sweep = False
            self._replaced.sweep()

    def _versioning_changed(self) -> bool:
        """Ask the bucket's versioning again, at most every REPROBE_SECONDS: a switch made
        behind this store (not through it) means writes it counted may be off, so the
        ledger is marked for a recount (docs/quotas.md, "Versions": the assumption)."""
        before = self.versioning.known
        if before is None or not self.versioning.stale:
            return False
        return self.versioning.refresh() != before

    def _landed(self, nonce: str | None) -> bool:
        current, _, damaged = self._load()
        lease = current.leases.get(self.lease_id)
        if damaged:
            return False
        if nonce is None:
            return lease is None
        return lease is not None and lease.nonce == nonce

    def _recount(self, ledger: Ledger, low: float) -> None:
        """Set committed usage from a listing begun now (a new rebase generation)."""
        listed = self.list_usage()
        ledger.rebase(listed.bytes, listed.files, low)
        self._sweep = self.versioning.known not in (None, "off")

    def _load(self) -> tuple[Ledger, ObjectInfo | None, bool]:
        """The ledger, what was read (its ETag, its version; None: absent) and whether it
        must be rebuilt."""
        try:
            data = self.records.get(LEDGER)
        except KeyNotFoundError:
            return Ledger(), None, True  # no ledger yet (or it was deleted)
        assert data is not None
        try:
            ledger = Ledger.parse(data.body)
            now = self.records.server_time()
            ledger.bound(now[1] if now else time.time())
            own = ledger.leases.get(self.lease_id)
            if own is not None and own.settled > self.seq:
                raise LedgerDamagedError(f"this store's lease says change {own.settled} is in")
            return ledger, data.info, False
        except LedgerDamagedError as exc:
            log.warning("The usage ledger is damaged (%s); rebuilding it from a listing", exc)
            return Ledger(), data.info, True
