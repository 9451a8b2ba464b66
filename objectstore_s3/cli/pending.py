"""What `du` says when the quota ledger and a listing of the bucket disagree: the writes
whose answers were lost and that may still land (the ledger's maybes, counted until their
horizon), the leases of live stores (their saves settle into the ledger when they renew or
close) and the holds kept for dead processes' journals. `du` counts from a listing, `du
--reconcile` recounts the ledger (listing plus maybes): this is the difference, in words."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from objectstore_s3.lean import StorageUsage
from objectstore_s3.store import ObjectStore

from .listing import when

__all__ = ["pending_lines", "pending_usage"]


def pending_usage(store: ObjectStore, listed: StorageUsage) -> dict[str, Any] | None:
    """The ledger's figures and what is pending in it, if they differ from `listed` (or
    anything is pending); None when they agree, or there is no ledger yet."""
    health = store.ledger_health()
    if health is None:
        return None
    until = health.maybe_until
    pending = {
        "ledger_bytes": health.bytes,
        "ledger_files": health.files,
        "maybe_writes": health.maybe_writes,
        "maybe_files": health.maybe_files,
        "maybe_bytes": health.maybe_bytes,
        "maybe_until": None if until is None else until.isoformat(),
        "leases": health.leases,
        "holds": health.holds,
        "reserved_bytes": health.reserved_bytes,
        "reserved_files": health.reserved_files,
    }
    agree = (health.bytes, health.files) == (listed.bytes, listed.files)
    return None if agree and not health.maybe_writes and not health.holds else pending


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
