"""Row 4: a cached 64 KiB read against diskcache's own get in the same kind of folder."""

from __future__ import annotations

import os

import diskcache

from bench.harness import Bench
from bench.measure import KiB, Row, at_most, cpu_note, per_call


def run(b: Bench) -> list[Row]:
    store = b.store("cached")
    payload = os.urandom(64 * KiB)
    store.save("value", payload)
    assert store.read_bytes("value") == payload
    folder = b.folder / "caches" / "raw-diskcache"
    raw = diskcache.Cache(
        str(folder),
        size_limit=store.settings.cache_size_limit,
        eviction_policy="least-recently-stored",
    )
    raw.set("value", payload)
    t = per_call(
        {"store": lambda: store.read_bytes("value"), "diskcache": lambda: raw.get("value")},
        b.scale,
        per_round=b.scale.per_round * 10,
    )
    raw.close()
    return [
        at_most(
            "4. cached read, 64 KiB",
            t["store"],
            "diskcache Cache.get",
            t["diskcache"],
            2,
            notes=cpu_note(t, "store", "diskcache"),
        )
    ]
