"""Row 6: 4 and 16 threads sharing one write-through store, against boto3 with a client
per thread (throughput)."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.harness import Bench
from bench.measure import KiB, Row, at_least, cpu_note, per_round, timed
from bench.server import BUCKET, raw_client
from objectstore_s3 import ObjectStore


def run(b: Bench) -> list[Row]:
    rows = []
    payload = os.urandom(KiB)
    store = b.store("threads")
    store.save("warm", payload)
    for threads in (4, 16):
        rows.append(threads_row(b, store, threads, payload))
    return rows


def threads_row(b: Bench, store: ObjectStore, threads: int, payload: bytes) -> Row:
    each = b.scale.per_thread
    clients = [raw_client(b.server) for _ in range(threads)]
    for client in clients:
        client.put_object(Bucket=BUCKET, Key="warm", Body=payload)

    def in_threads(work: Callable[[int], None]) -> float:
        with ThreadPoolExecutor(threads) as pool:
            return timed(lambda: list(pool.map(work, range(threads))))

    def store_run(round_: int) -> float:
        def work(thread: int) -> None:
            for index in range(each):
                store.save(f"t{threads}-{round_}/{thread}-{index}", payload)

        return in_threads(work)

    def boto3_run(round_: int) -> float:
        def work(thread: int) -> None:
            client: Any = clients[thread]
            for index in range(each):
                client.put_object(
                    Bucket=BUCKET, Key=f"raw-t{threads}-{round_}/{thread}-{index}", Body=payload
                )

        return in_threads(work)

    saves = threads * each
    t = per_round({"store": store_run, "boto3": boto3_run}, b.scale.rounds, ops=saves)
    return at_least(
        f"6. {threads} threads sharing one store, 1 KiB write-through saves",
        f"{saves / t['store']:.0f} saves/s",
        "boto3, a client per thread",
        f"{saves / t['boto3']:.0f} puts/s",
        t["boto3"] / t["store"],
        0.9,
        "throughput",
        notes=cpu_note(t, "store", "boto3"),
    )
