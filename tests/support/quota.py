"""Helpers of the quota tests: fill an organization up to its limit, bring stores to rest,
and check what a fresh node then finds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from objectstore_s3 import ObjectStore
from tests.support.helpers import ledger, listing


def fill(store: ObjectStore, prefix: str = "fill", limit: int = 10_000) -> int:
    """Save new keys until one is refused; how many were accepted."""
    for index in range(limit):
        if not store.save(f"{prefix}/{index}", "x"):
            return index
    return limit


def settled_store(
    make_store: Callable[..., ObjectStore], count: int, value: str = "v", **limits: Any
) -> ObjectStore:
    """A store (with `limits`) that saved `count` keys k0, k1, ... and settled them: the
    ledger holds them."""
    store = make_store(**limits)
    for index in range(count):
        store.save(f"k{index}", value)
    store.flush()
    return store


def at_rest(*stores: ObjectStore) -> None:
    """Flush, settle and release every store (what they did is in the ledger)."""
    for store in stores:
        store.close()


def check_at_rest(
    make_store: Callable[..., ObjectStore],
    tmp_path: Path,
    *stores: ObjectStore,
    files: int,
    room: int | None = None,
    **limits: Any,
) -> ObjectStore:
    """Bring `stores` to rest, then look from a fresh node (with the same `limits`): a
    listing and the ledger both count `files`, and (given `room`) exactly `room` more
    files fit. The fresh node, for further checks."""
    at_rest(*stores)
    check = make_store(**limits, cache_dir=tmp_path / "check")
    assert listing(check)[1] == files
    assert ledger(check)["files"] == files
    if room is not None:
        assert fill(check) == room
        assert listing(check)[1] == files + room
    return check
