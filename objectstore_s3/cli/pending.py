"""What `du` says when the quota ledger and a listing of the bucket disagree: the writes
whose answers were lost and that may still land (the ledger's maybes, counted until their
horizon), the leases of live stores (their saves settle into the ledger when they renew or
close) and the holds kept for dead processes' journals. `du` counts from a listing, `du
--reconcile` recounts the ledger (listing plus maybes): this is the difference, in words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from objectstore_s3.lean import StorageUsage
from objectstore_s3.store import ObjectStore

from .listing import when

__all__ = ["pending_lines", "pending_usage"]


def pending_usage(store: ObjectStore, listed: StorageUsage) -> dict[str, Any] | None:
    """The ledger's figures and what is pending in it, if they differ from `listed` (or
    anything is pending); None when they agree, or there is no ledger yet."""
    # The ledger is the store's own bookkeeping, not public API: read for display only.
    ledger = store._parts.quota.ledger()
    if ledger is None:
        return None
    maybes = ledger.maybes
    horizon = max((until for _, _, until in maybes), default=None)
    reserved_bytes, reserved_files = ledger.reserved()
    pending = {
        "ledger_bytes": ledger.bytes,
        "ledger_files": ledger.files,
        "maybe_writes": len(maybes),
        "maybe_files": sum(files for files, _, _ in maybes),
        "maybe_bytes": sum(size for _, size, _ in maybes),
        "maybe_until": _iso(horizon),
        "leases": len(ledger.leases),
        "holds": len(ledger.holds),
        "reserved_bytes": reserved_bytes,
        "reserved_files": reserved_files,
    }
    agree = (ledger.bytes, ledger.files) == (listed.bytes, listed.files)
    return None if agree and not maybes and not ledger.holds else pending


def _iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat()


def pending_lines(pending: dict[str, Any], listed: StorageUsage) -> list[str]:
    """The difference in words, one line each, for `du`'s text output."""
    lines = [
        f"ledger {pending['ledger_files']:>14,} files, {pending['ledger_bytes']:,} bytes "
        f"(the listing: {listed.files:,} files, {listed.bytes:,} bytes)"
    ]
    if pending["maybe_writes"]:
        until = when(datetime.fromisoformat(pending["maybe_until"]))
        lines.append(
            f"maybe  {pending['maybe_writes']:>14,} writes whose answer was lost may still "
            f"land (+{pending['maybe_files']:,} files, +{pending['maybe_bytes']:,} bytes): "
            f"counted until {until}, then dropped at a recount"
        )
    if pending["leases"]:
        lines.append(
            f"leases {pending['leases']:>14,} live stores reserve {pending['reserved_files']:,}"
            f" files, {pending['reserved_bytes']:,} bytes; their saves settle into the "
            "ledger when they renew or close"
        )
    if pending["holds"]:
        lines.append(
            f"holds  {pending['holds']:>14,} journals of stopped processes wait for a replay "
            "(the next store on their node)"
        )
    lines.append("`objectstore-s3 du --reconcile` recounts the ledger from a listing")
    return lines
