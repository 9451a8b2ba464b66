"""Quotas by usage accounting kept in the bucket, correct across processes and machines.

The organization's ledger is one small JSON object outside its key space
(`<prefix>/.objectstore/<org>/usage.json`):

    {"bytes": B, "files": F, "leases": {"<id>": {"bytes": b, "files": f, "expires_at": t}}}

`bytes`/`files` count objects known to exist; a lease is capacity one live store has
reserved and may spend without asking again. Every change to the ledger is a
read-modify-write guarded by `If-Match` (its ETag) or `If-None-Match: *` (creation), and
is retried on 412, so concurrent writers serialize on it. A lease is granted only if
`bytes + sum(leases) + grant` stays within the limit, hence the stores together can
never pass a limit. See docs/quotas.md for what is counted when and the crash cases.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .backend import PreconditionFailedError, S3Backend
from .errors import (
    KeyNotFoundError,
    ObjectStoreError,
    StorageLimitExceededError,
    StorageUnavailableError,
)

__all__ = ["Quota", "Reservation", "Usage"]

log = logging.getLogger("objectstore_s3")

MB = 1024 * 1024
LEASE_SECONDS = 300.0
_MAX_CONFLICT_RETRIES = 50


def _mb(size: int) -> str:
    """LEAN reports sizes in MB; small figures also get their exact bytes."""
    return f"{size / MB:.2f} MB" if size >= MB else f"{size / MB:.2f} MB ({size} bytes)"


@dataclass(frozen=True)
class Usage:
    bytes: int
    files: int


@dataclass(frozen=True)
class Reservation:
    """Capacity taken from this store's lease for one pending write."""

    files: int
    bytes: int


@dataclass
class _Ledger:
    bytes: int
    files: int
    leases: dict[str, dict[str, float]]
    etag: str | None

    def leased(self, now: float, exclude: str | None = None) -> tuple[int, int]:
        live = [
            lease
            for lease_id, lease in self.leases.items()
            if lease["expires_at"] > now and lease_id != exclude
        ]
        return (
            int(sum(lease["bytes"] for lease in live)),
            int(sum(lease["files"] for lease in live)),
        )


class Quota:
    """One store's view of its organization's quota: a lease spent locally, settled often."""

    def __init__(
        self,
        backend: Callable[[], S3Backend],
        ledger_key: str,
        list_usage: Callable[[], Usage],
        max_bytes: int,
        max_files: int,
    ) -> None:
        self._backend = backend
        self._ledger_key = ledger_key
        self._list_usage = list_usage
        self.max_bytes = max_bytes
        self.max_files = max_files
        self._lock = threading.RLock()
        self._lease_id = uuid.uuid4().hex
        self._allowance_bytes = 0
        self._allowance_files = 0
        self._unsettled_bytes = 0
        self._unsettled_files = 0
        # Reserved for writes not done yet (write-behind saves waiting for a flush).
        self._outstanding_bytes = 0
        self._outstanding_files = 0
        self._renew_at = 0.0

    # -- spending ----------------------------------------------------------------------------

    def reserve(
        self, key: str, files: int, size_delta: int, replacing: Reservation | None = None
    ) -> Reservation:
        """Take capacity for a write that adds `files` objects and `size_delta` bytes.

        `replacing` is the reservation of a pending write this one supersedes (a coalesced
        write-behind save); it is given back if, and only if, the new one succeeds.
        Raises StorageLimitExceededError (nothing changed) if the organization's limits
        do not leave room, counting every other store's lease as used.
        """
        need = Reservation(max(files, 0), max(size_delta, 0))
        with self._lock:
            if replacing is not None:
                self.cancel(replacing)
            covered = need.files <= self._allowance_files and need.bytes <= self._allowance_bytes
            try:
                if not covered:
                    self._sync(key, need)
                elif time.monotonic() > self._renew_at:
                    self._renew_quietly()
            except BaseException:
                if replacing is not None:  # the superseded write stays pending: keep its share
                    self.hold(replacing)
                raise
            self.hold(need)
            return need

    def renew(self) -> None:
        """Keep this store's lease alive before a change that needs no reservation."""
        with self._lock:
            if time.monotonic() > self._renew_at:
                self._renew_quietly()

    def _renew_quietly(self) -> None:
        # Best effort: with the bucket unreachable, the capacity already reserved is still
        # ours to spend (write-behind keeps accepting saves through an outage).
        try:
            self._update(lambda ledger: self._settle_into(ledger, release=False))
        except StorageUnavailableError as exc:
            log.warning("Could not renew the quota lease (%s); spending the reserved capacity", exc)

    def commit(self, reservation: Reservation, files: int, size_delta: int) -> None:
        """The write happened and changed usage by (files, size_delta); return the rest."""
        with self._lock:
            self._allowance_files += reservation.files - max(files, 0)
            self._allowance_bytes += reservation.bytes - max(size_delta, 0)
            self._outstanding_files -= reservation.files
            self._outstanding_bytes -= reservation.bytes
            self._unsettled_files += files
            self._unsettled_bytes += size_delta

    def hold(self, reservation: Reservation) -> None:
        """Take back a reservation given up too early (its write is still pending)."""
        with self._lock:
            self._allowance_files -= reservation.files
            self._allowance_bytes -= reservation.bytes
            self._outstanding_files += reservation.files
            self._outstanding_bytes += reservation.bytes

    def cancel(self, reservation: Reservation) -> None:
        """The write did not happen: give the capacity back to the lease."""
        with self._lock:
            self._allowance_files += reservation.files
            self._allowance_bytes += reservation.bytes
            self._outstanding_files -= reservation.files
            self._outstanding_bytes -= reservation.bytes

    def record(self, files: int, size_delta: int) -> None:
        """Usage changed without a reservation (a delete, which only frees space)."""
        with self._lock:
            self._unsettled_files += files
            self._unsettled_bytes += size_delta

    # -- the ledger ----------------------------------------------------------------------------

    def settle(self, release: bool = False) -> None:
        """Write this store's usage changes to the ledger; with `release`, drop its lease."""
        with self._lock:
            unsettled = bool(self._unsettled_files or self._unsettled_bytes)
            if not unsettled and not (release and self._renew_at):
                return  # nothing to report, and no lease to give back
            self._update(lambda ledger: self._settle_into(ledger, release))

    def usage(self) -> Usage:
        """The organization's usage after settling this store's changes."""
        with self._lock:
            ledger = self._update(lambda ledger: self._settle_into(ledger, release=False))
            return Usage(ledger.bytes, ledger.files)

    def reconcile(self) -> Usage:
        """Rebuild the counts from a listing of the organization's objects (repairs drift)."""
        with self._lock:
            listed = self._list_usage()

            def apply(ledger: _Ledger) -> None:
                ledger.bytes, ledger.files = listed.bytes, listed.files
                # The listing already counts what this store wrote.
                self._unsettled_bytes = self._unsettled_files = 0
                self._settle_into(ledger, release=False)

            ledger = self._update(apply)
            return Usage(ledger.bytes, ledger.files)

    def _sync(self, key: str, need: Reservation) -> None:
        """Settle and grow the lease so it covers `need` (plus headroom), or refuse."""

        def apply(ledger: _Ledger) -> None:
            self._settle_into(ledger, release=False)
            now = time.time()
            leased_bytes, leased_files = ledger.leased(now, exclude=self._lease_id)
            # Our own pending reservations are in use too, until their writes are counted.
            free_files = self.max_files - ledger.files - leased_files - self._outstanding_files
            free_bytes = self.max_bytes - ledger.bytes - leased_bytes - self._outstanding_bytes
            want_files = need.files - self._allowance_files
            want_bytes = need.bytes - self._allowance_bytes
            if want_files > 0 and want_files > free_files:
                raise StorageLimitExceededError(
                    f"You have reached the ObjectStore limit for files it can save: "
                    f"{self.max_files} ({ledger.files} stored, {leased_files} reserved by "
                    f"other writers), unable to save the new file: '{key}'. Delete keys or "
                    "raise storage_file_count."
                )
            if want_bytes > 0 and want_bytes > free_bytes:
                raise StorageLimitExceededError(
                    f"Unable to save '{key}' ({_mb(need.bytes)}): it would exceed the storage "
                    f"capacity limit of {_mb(self.max_bytes)} ({_mb(ledger.bytes)} used, "
                    f"{_mb(leased_bytes)} reserved by other writers). Delete keys or raise "
                    "storage_limit_bytes."
                )
            # Headroom: an eighth of what is free, so most saves need no ledger request,
            # small enough that concurrent writers are not starved.
            self._allowance_files += max(want_files, 0) + max(
                0, min((free_files - max(want_files, 0)) // 8, 1000)
            )
            self._allowance_bytes += max(want_bytes, 0) + max(
                0, min((free_bytes - max(want_bytes, 0)) // 8, 256 * MB)
            )
            self._write_lease(ledger, now)

        self._update(apply)

    def _settle_into(self, ledger: _Ledger, release: bool) -> None:
        if self._lease_id not in ledger.leases and self._renew_at:
            # Our lease expired (we were idle past it) and was reclaimed with a listing,
            # which counted everything we had written: start over from the ledger.
            log.warning("Object Store quota lease expired; continuing with a new one")
            self._unsettled_bytes = self._unsettled_files = 0
            self._allowance_bytes = self._allowance_files = 0
        ledger.bytes = max(0, ledger.bytes + self._unsettled_bytes)
        ledger.files = max(0, ledger.files + self._unsettled_files)
        self._unsettled_bytes = self._unsettled_files = 0
        if release and not (self._outstanding_files or self._outstanding_bytes):
            self._allowance_bytes = self._allowance_files = 0
            ledger.leases.pop(self._lease_id, None)
        else:
            self._write_lease(ledger, time.time())

    def _write_lease(self, ledger: _Ledger, now: float) -> None:
        # Written even when empty: while this store is open, its lease marks it alive.
        # A negative allowance (replayed writes nobody reserved) reserves nothing.
        ledger.leases[self._lease_id] = {
            "bytes": max(self._allowance_bytes, 0) + self._outstanding_bytes,
            "files": max(self._allowance_files, 0) + self._outstanding_files,
            "expires_at": now + LEASE_SECONDS,
        }

    def _update(self, apply: Callable[[_Ledger], None]) -> _Ledger:
        """Read-modify-write the ledger with a conditional PUT, retrying lost races.

        `apply` mutates the ledger and this store's local state; local state is restored
        before each retry so a lost race is not counted twice.
        """
        backend = self._backend()
        for _ in range(_MAX_CONFLICT_RETRIES):
            snapshot = (
                self._allowance_bytes,
                self._allowance_files,
                self._unsettled_bytes,
                self._unsettled_files,
            )
            ledger = self._load(backend)
            expired = [
                lease_id
                for lease_id, lease in ledger.leases.items()
                if lease["expires_at"] <= time.time() and lease_id != self._lease_id
            ]
            if expired:
                # A store died holding a lease: what it wrote but never settled is only
                # known to a listing. Reclaim the lease and recount.
                listed = self._list_usage()
                ledger.bytes, ledger.files = listed.bytes, listed.files
                for lease_id in expired:
                    del ledger.leases[lease_id]
            try:
                apply(ledger)
                body = json.dumps(
                    {"bytes": ledger.bytes, "files": ledger.files, "leases": ledger.leases},
                    sort_keys=True,
                ).encode()
                if ledger.etag is None:
                    ledger.etag = backend.put(self._ledger_key, body, if_none_match="*")
                else:
                    ledger.etag = backend.put(self._ledger_key, body, if_match=ledger.etag)
            except PreconditionFailedError:
                (
                    self._allowance_bytes,
                    self._allowance_files,
                    self._unsettled_bytes,
                    self._unsettled_files,
                ) = snapshot
                time.sleep(random.uniform(0.002, 0.02))  # noqa: S311  (jitter, not crypto)
                continue
            except BaseException:
                # Refused, or the ledger could not be written: nothing was settled.
                (
                    self._allowance_bytes,
                    self._allowance_files,
                    self._unsettled_bytes,
                    self._unsettled_files,
                ) = snapshot
                raise
            self._renew_at = time.monotonic() + LEASE_SECONDS / 2
            return ledger
        raise ObjectStoreError(
            f"The usage ledger {self._ledger_key} kept changing under {_MAX_CONFLICT_RETRIES} "
            "attempts to update it; try again."
        )

    def _load(self, backend: S3Backend) -> _Ledger:
        try:
            data = backend.get(self._ledger_key)
        except KeyNotFoundError:
            # No ledger yet (or it was deleted): build it from a listing.
            listed = self._list_usage()
            return _Ledger(listed.bytes, listed.files, {}, None)
        assert data is not None
        try:
            raw: dict[str, Any] = json.loads(data.body)
            return _Ledger(
                int(raw["bytes"]), int(raw["files"]), dict(raw.get("leases", {})), data.etag
            )
        except (ValueError, KeyError, TypeError):
            log.warning("The usage ledger %s is damaged; rebuilding it", self._ledger_key)
            listed = self._list_usage()
            return _Ledger(listed.bytes, listed.files, {}, data.etag)
