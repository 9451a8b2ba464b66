"""Cache and write-behind benchmark on SeaweedFS, against raw boto3 in the same run.

    python bench/bench_cache.py

Prints medians and ratios (a markdown table; results are kept in docs/benchmarks.md):
- a cached 1 KiB read vs a raw boto3 get_object of the same object;
- a revalidated read (conditional GET answered 304) vs a raw boto3 head_object;
- 1,000 write-behind saves plus flush vs 1,000 write-through saves (distinct keys, and
  one hot key saved 1,000 times).
"""

from __future__ import annotations

import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BUCKET,
    create_bucket,
    human,
    median_seconds,
    print_table,
    raw_client,
    seaweed,
    settings_for,
)

from objectstore_s3 import ObjectStore

SAVES = 1000
ROUNDS = 3


def timed_saves(store: ObjectStore, keys: list[str], payload: bytes) -> float:
    """Seconds to save every key, then flush (a no-op in write-through mode)."""
    started = time.perf_counter()
    for key in keys:
        store.save_bytes(key, payload)
    store.flush()
    return time.perf_counter() - started


def timed_raw_parallel(client: object, keys: list[str], payload: bytes) -> float:
    """Seconds for raw boto3 to put every key from 8 threads: the server's own ceiling."""
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda key: client.put_object(Bucket=BUCKET, Key=key, Body=payload),  # type: ignore[attr-defined]
                keys,
            )
        )
    return time.perf_counter() - started


def main() -> None:
    with seaweed() as (server, folder):
        create_bucket(server, folder)
        client = raw_client(server)
        payload = b"x" * 1024

        store = ObjectStore(settings_for(server, folder))
        store.save_bytes("bench/1k", payload)
        object_key = "bench/bench/1k"
        raw_get = median_seconds(
            lambda: client.get_object(Bucket=BUCKET, Key=object_key)["Body"].read(), 300
        )
        cached = median_seconds(lambda: store.read_bytes("bench/1k"), 3000)
        raw_head = median_seconds(lambda: client.head_object(Bucket=BUCKET, Key=object_key), 300)
        revalidating = ObjectStore(
            settings_for(server, folder, cache_dir=folder / "reval", cache_revalidate=True)
        )
        revalidating.read_bytes("bench/1k")
        revalidated = median_seconds(lambda: revalidating.read_bytes("bench/1k"), 300)

        distinct = [f"wb/{index}" for index in range(SAVES)]
        hot = [f"hot/{index % 10}" for index in range(SAVES)]
        results: dict[str, list[float]] = {}
        for round_ in range(ROUNDS):
            through = ObjectStore(settings_for(server, folder, cache_dir=folder / f"wt{round_}"))
            behind = ObjectStore(
                settings_for(
                    server,
                    folder,
                    cache_dir=folder / f"wb{round_}",
                    persistence_interval_seconds=60,
                )
            )
            for name, keys in (("distinct", distinct), ("hot", hot)):
                results.setdefault(f"through-{name}", []).append(
                    timed_saves(through, keys, payload)
                )
                results.setdefault(f"behind-{name}", []).append(timed_saves(behind, keys, payload))
            through.close()
            behind.close()
            results.setdefault("raw-parallel", []).append(
                timed_raw_parallel(
                    client, [f"raw{round_}/{index}" for index in range(SAVES)], payload
                )
            )
        med = {name: statistics.median(values) for name, values in results.items()}
        store.close()
        revalidating.close()

    rows = [
        [
            "cached 1 KiB read",
            human(cached),
            "boto3 get_object",
            human(raw_get),
            f"{raw_get / cached:.0f}x faster",
            ">= 60x",
        ],
        [
            "revalidated read (304)",
            human(revalidated),
            "boto3 head_object",
            human(raw_head),
            f"{revalidated / raw_head:.2f}x the time",
            "<= 1.2x",
        ],
    ]
    for name, label in (("distinct", "1,000 distinct keys"), ("hot", "10 hot keys x 100")):
        rows.append(
            [
                f"1,000 write-behind saves + flush ({label})",
                human(med[f"behind-{name}"]),
                "1,000 write-through saves",
                human(med[f"through-{name}"]),
                f"{med[f'through-{name}'] / med[f'behind-{name}']:.1f}x faster",
                ">= 20x",
            ]
        )
    rows.append(
        [
            "1,000 write-behind saves + flush (1,000 distinct keys)",
            human(med["behind-distinct"]),
            "raw boto3 put_object x 1,000 from 8 threads",
            human(med["raw-parallel"]),
            f"{med['raw-parallel'] / med['behind-distinct']:.2f}x the speed",
            "(server ceiling)",
        ]
    )
    print_table(
        "Cache and write-behind (SeaweedFS on loopback, medians, one run)",
        ["objectstore-s3", "time", "baseline", "time", "ratio", "target"],
        rows,
    )


if __name__ == "__main__":
    main()
