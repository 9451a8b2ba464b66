"""Rows 5 and 11 (flush): write-behind saves of distinct keys, then flush, against
boto3 put_object from 8 threads and obstore put_async with 8 in flight."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import obstore

from bench.harness import Bench
from bench.measure import KiB, Row, at_most, cpu_note, per_round, timed


def run(b: Bench) -> list[Row]:
    payload = os.urandom(KiB)
    count = b.scale.flushed
    t = per_round(
        {
            "store boto3": store_run(b, "boto3", payload),
            "store obstore": store_run(b, "obstore", payload),
            "boto3": lambda round_: boto3_run(b, round_, payload),
            "obstore": lambda round_: obstore_run(b, round_, payload),
        },
        b.scale.rounds,
        ops=count,
    )
    tag = f"{count:,}"
    return [
        at_most(
            f"5. write-behind: {tag} saves + flush (boto3 transport)",
            t["store boto3"],
            f"boto3 put_object x {tag}, 8 threads",
            t["boto3"],
            1.2,
            notes=cpu_note(t, "store boto3", "boto3"),
        ),
        at_most(
            f"11. write-behind: {tag} saves + flush (obstore transport)",
            t["store obstore"],
            f"obstore put_async x {tag}, 8 in flight",
            t["obstore"],
            1.5,
            notes=cpu_note(t, "store obstore", "obstore"),
        ),
    ]


def store_run(b: Bench, transport: str, payload: bytes) -> Callable[[int], float]:
    """A round of the store: a fresh write-behind store, `flushed` saves, then flush."""

    def run(round_: int) -> float:
        store = b.store(
            f"wb-{transport}-{round_}", transport=transport, persistence_interval_seconds=60
        )
        store.save("warm", payload)  # the connection, the probe and the lease
        store.flush()
        keys = [f"k{index:05d}" for index in range(b.scale.flushed)]

        def work() -> None:
            for key in keys:
                store.save(key, payload)
            store.flush()

        seconds = timed(work)
        store.close()
        return seconds

    return run


def boto3_run(b: Bench, round_: int, payload: bytes) -> float:
    keys = [f"wb-raw-{round_}/k{index:05d}" for index in range(b.scale.flushed)]
    return timed(lambda: b.put_raw(keys, payload))


def obstore_run(b: Bench, round_: int, payload: bytes) -> float:
    keys = [f"wb-obs-{round_}/k{index:05d}" for index in range(b.scale.flushed)]

    async def main() -> None:
        gate = asyncio.Semaphore(8)

        async def one(key: str) -> None:
            async with gate:
                await obstore.put_async(b.obs, key, payload)

        await asyncio.gather(*(one(key) for key in keys))

    return timed(lambda: asyncio.run(main()))
