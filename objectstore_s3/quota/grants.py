"""What a lease is granted, from the ledger as an update reads it. Pure: no I/O.

A grow covers a write plus headroom (`grant_headroom`: a share of what is free, larger for
a busy or steady store), or refuses it; a renewal keeps no more than a grow could get now
(`yield_unspent`): near a limit, what a lease holds unspent goes back to the organization.
Both see "free" as the limits minus committed usage, the other leases and holds, and what
this lease has in flight or held (`free_to`). The transaction (transaction.py) applies
them inside a conditional ledger update.
"""

from __future__ import annotations

from dataclasses import dataclass

from .account import Account
from .ledger import Ledger, grant_headroom
from .spend import MB, bytes_refused, files_refused

__all__ = ["NEAR", "Limits", "free_to", "grow", "yield_unspent"]

# "Near a limit": less than this share of it is free (renewals then settle through the
# ledger, so that leases yield what they hold unspent).
NEAR = 0.2
_MOST_FILES, _MOST_BYTES = 1000, 256 * MB  # the largest headroom of one grant


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_files: int

    def near(self, free_files: int, free_bytes: int) -> bool:
        return free_files < self.max_files * NEAR or free_bytes < self.max_bytes * NEAR


def free_to(ledger: Ledger, state: Account, lease_id: str, limits: Limits) -> tuple[int, int]:
    """(files, bytes) free to this lease: what it has in flight and held is in use too."""
    free_bytes, free_files = ledger.free(limits.max_bytes, limits.max_files, lease_id)
    held_bytes, held_files = state.held_totals()
    free_files -= state.flying_files + held_files
    return free_files, free_bytes - state.flying_bytes - held_bytes


def grow(
    ledger: Ledger,
    state: Account,
    lease_id: str,
    limits: Limits,
    need: tuple[str, int, int],
    pace: tuple[int, int, int],
) -> bool:
    """Grow `state`'s allowance to cover `need` (key, files, size) plus headroom (`pace`:
    busy streak, files and bytes at the store's pace), or raise the refusal. Returns
    whether the organization is near a limit."""
    key, files, size = need
    free_files, free_bytes = free_to(ledger, state, lease_id, limits)
    want_files = files - max(state.allowance_files, 0)
    want_bytes = size - max(state.allowance_bytes, 0)
    if files and want_files > free_files:
        reserved = limits.max_files - ledger.files - free_files
        raise files_refused(key, limits.max_files, ledger.files, reserved)
    if size and want_bytes > free_bytes:
        reserved = limits.max_bytes - ledger.bytes - free_bytes
        raise bytes_refused(key, size, limits.max_bytes, ledger.bytes, reserved)
    others = ledger.live_others(lease_id)
    busy, pace_files, pace_bytes = pace
    near = limits.near(free_files, free_bytes)
    if near:  # a quarter of the pace's horizon: what is left is not parked in leases
        pace_files, pace_bytes = pace_files // 4, pace_bytes // 4
    state.allowance_files = max(state.allowance_files, 0) + max(want_files, 0)
    state.allowance_bytes = max(state.allowance_bytes, 0) + max(want_bytes, 0)
    state.allowance_files += grant_headroom(
        free_files - max(want_files, 0), others, _MOST_FILES, busy, pace_files
    )
    state.allowance_bytes += grant_headroom(
        free_bytes - max(want_bytes, 0), others, _MOST_BYTES, busy, pace_bytes
    )
    return near


def yield_unspent(ledger: Ledger, state: Account, lease_id: str, limits: Limits) -> bool:
    """At a renewal, keep no more allowance than the largest grant a grow could get now
    (the busy rule's 16x share of what is free): near a limit, what the lease holds
    unspent goes back to the organization, so another store's save is not refused while
    this one sits on capacity it was granted when more was free. Returns whether the
    organization is near a limit."""
    free_files, free_bytes = free_to(ledger, state, lease_id, limits)
    others = ledger.live_others(lease_id)
    most_files = grant_headroom(free_files, others, _MOST_FILES, busy=4)
    most_bytes = grant_headroom(free_bytes, others, _MOST_BYTES, busy=4)
    state.allowance_files = min(state.allowance_files, most_files)
    state.allowance_bytes = min(state.allowance_bytes, most_bytes)
    return limits.near(free_files, free_bytes)
