"""Helpers of the quota tests: fill an organization up to its limit, and bring stores to rest."""

from __future__ import annotations

from objectstore_s3 import ObjectStore


def fill(store: ObjectStore, prefix: str = "fill", limit: int = 10_000) -> int:
    """Save new keys until one is refused; how many were accepted."""
    for index in range(limit):
        if not store.save(f"{prefix}/{index}", "x"):
            return index
    return limit


def at_rest(*stores: ObjectStore) -> None:
    """Flush, settle and release every store (what they did is in the ledger)."""
    for store in stores:
        store.close()
