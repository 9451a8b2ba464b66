"""Row 7: iterating / read_many over uncached values vs one read_bytes per key, on
loopback (both transports) and behind a proxy that adds 10 ms to every answer (the
round trip to a real S3 region, where fetching ahead is what counts)."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable
from typing import Any

from bench.harness import Bench
from bench.measure import Action, KiB, Row, at_least, cpu_note, human, per_round, timed
from objectstore_s3 import ObjectStore


def run(b: Bench) -> list[Row]:
    count = b.scale.values
    b.put_raw([f"many/k{index:05d}" for index in range(count)], os.urandom(KiB))
    rows = []
    for transport in ("boto3", "obstore"):
        store = b.store("many", cache_size_limit=0, transport=transport)
        rows += many_rows(b, store, f"{count:,} uncached 1 KiB values, {transport}", b.scale.rounds)
    from tests.support.faultproxy import Fault, FaultProxy  # the tests' proxy: only here

    few = max(1, count // 5)
    b.put_raw([f"many-wan/k{index:05d}" for index in range(few)], os.urandom(KiB))
    with FaultProxy("127.0.0.1", b.server.port) as proxy:
        proxy.add_rule(Fault.delay_response(0.010))
        for transport in ("boto3", "obstore"):
            store = b.store(
                "many-wan", cache_size_limit=0, transport=transport, endpoint_url=proxy.url
            )
            tag = f"{few:,} uncached 1 KiB values, 10 ms added per answer, {transport}"
            rows += many_rows(b, store, tag, max(1, b.scale.rounds // 2), slow=True)
    return rows


def many_rows(b: Bench, store: ObjectStore, tag: str, rounds: int, slow: bool = False) -> list[Row]:
    """Iteration and read_many against one read_bytes per key; peak memory on loopback only."""
    keys = store.keys
    runs: dict[str, Callable[[int], float]] = {
        "one by one": lambda _: timed(lambda: [store.read_bytes(key) for key in keys]),
        "iterate": lambda _: timed(lambda: list(store)),
        "read_many": lambda _: timed(lambda: list(store.read_many(keys))),
    }
    t = per_round(runs, rounds, ops=len(keys))
    rows = []
    for label, name, values in (
        ("`for kvp in store`", "iterate", lambda: iter(store)),
        ("read_many", "read_many", lambda: store.read_many(keys)),
    ):
        notes = cpu_note(t, name, "one by one")
        if not slow:
            notes = peak(lambda values=values: consume(values())) + "; " + notes
        rows.append(
            at_least(
                f"7. {label} over {tag}",
                human(t[name]),
                f"{len(keys):,} read_bytes calls",
                human(t["one by one"]),
                t["one by one"] / t[name],
                5,
                "faster",
                notes=notes,
            )
        )
    return rows


def peak(action: Action) -> str:
    tracemalloc.start()
    action()
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return f"peak {top / 2**20:.1f} MiB (tracemalloc)"


def consume(values: Any) -> None:
    for _ in values:
        pass
