"""The project's benchmark: objectstore-s3 against raw boto3, obstore and minio, one run.

    python bench/run.py [--quick] [--rounds N] [--only SECTION,...]

Starts its own SeaweedFS on 127.0.0.1 (a free port; stopped by PID at the end), measures
the store on both transports and the raw clients on that same server, rotating the order
of the clients from round to round, and prints one markdown table: each row's median
over the rounds, its baseline, the ratio and whether the target is met. `--quick` runs
few rounds with small counts (a couple of minutes); the full run takes about 15 minutes.
It is a measurement, not a test: it never fails (a section that breaks prints its error
in its row). docs/benchmarks.md keeps the latest table and how to read it.

Ratios are objectstore time / baseline time (lower is better) unless the target says
"faster" or "throughput" (higher is better).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import io
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # tests.faultproxy

import bench_files
import boto3
import diskcache
import obstore
from common import BUCKET, human, raw_client, seaweed, settings_for
from minio import Minio
from obstore.store import S3Store

from objectstore_s3 import ObjectStore
from objectstore_s3.server.seaweedfs import SeaweedServer

KiB = 1024
ROOT = Path(__file__).resolve().parent.parent
BIG = {"storage_file_count": 10**9, "storage_limit_bytes": 10**14}  # quota on, never hit
Action = Callable[[], object]


# -- the measuring ------------------------------------------------------------------------


@dataclass
class Scale:
    rounds: int
    per_round: int  # calls per client per round, for per-call latencies
    listed: int  # keys in the listing
    flushed: int  # keys saved + flushed by write-behind
    per_thread: int  # saves per thread (threads rows)
    values: int  # values iterated / read_many'd
    processes: int  # fresh processes per round-robin (import, stat)
    file_mib: int
    file_rounds: int
    ledger_saves: int  # saves per process (ledger contention)
    ledger_rounds: int


FULL = Scale(7, 100, 5000, 1000, 40, 1000, 7, 256, 5, 150, 3)
QUICK = Scale(3, 15, 1000, 200, 10, 200, 5, 32, 3, 10, 1)


def rotated(labels: list[str], round_: int) -> list[str]:
    shift = round_ % len(labels)
    return labels[shift:] + labels[:shift]


class Medians(dict[str, float]):
    """Median seconds per label, with this process's CPU seconds per call (all threads;
    the server is another process) in `cpu`."""

    def __init__(self) -> None:
        super().__init__()
        self.cpu: dict[str, float] = {}


def per_call(actions: dict[str, Action], scale: Scale, per_round: int | None = None) -> Medians:
    """Median seconds per call of each action: per round, each client's median of
    `per_round` calls (clients in rotated order); then the median over the rounds."""
    count = per_round or scale.per_round
    labels = list(actions)
    for label in labels:
        for _ in range(3):
            actions[label]()
    medians: dict[str, list[float]] = {label: [] for label in labels}
    cpu: dict[str, float] = dict.fromkeys(labels, 0.0)
    for round_ in range(scale.rounds):
        for label in rotated(labels, round_):
            action = actions[label]
            samples = []
            cpu_started = time.process_time()
            for _ in range(count):
                started = time.perf_counter()
                action()
                samples.append(time.perf_counter() - started)
            cpu[label] += time.process_time() - cpu_started
            medians[label].append(statistics.median(samples))
    result = Medians()
    for label, values in medians.items():
        result[label] = statistics.median(values)
        result.cpu[label] = cpu[label] / (count * scale.rounds)
    return result


def per_round(runs: dict[str, Callable[[int], float]], rounds: int, ops: int = 1) -> Medians:
    """Median over the rounds of what each run reports (seconds), in rotated order; `cpu`
    is this process's CPU seconds per op in the runs' `timed` parts (`ops` per run)."""
    labels = list(runs)
    taken: dict[str, list[float]] = {label: [] for label in labels}
    cpu: dict[str, float] = dict.fromkeys(labels, 0.0)
    for round_ in range(rounds):
        for label in rotated(labels, round_):
            taken[label].append(runs[label](round_))  # each run ends with its `timed` part
            cpu[label] += _timed_cpu[0]
    result = Medians()
    for label, values in taken.items():
        result[label] = statistics.median(values)
        result.cpu[label] = cpu[label] / (rounds * ops)
    return result


def cpu_note(t: Medians, ours: str, base: str) -> str:
    """The client's own CPU per operation, ours vs the baseline's."""
    return f"client CPU/op {human(t.cpu[ours])} vs {human(t.cpu[base])}"


_timed_cpu = [0.0]  # this process's CPU seconds during the last `timed` call


def timed(action: Action) -> float:
    cpu_started = time.process_time()
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    _timed_cpu[0] = time.process_time() - cpu_started
    return seconds


def fresh_keys(prefix: str) -> Iterator[str]:
    return (f"{prefix}/{index:07d}" for index in itertools.count())


# -- the table ----------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    ours: str
    baseline: str = ""
    base_time: str = ""
    ratio: str = ""
    target: str = ""
    met: str = ""
    minio: str = ""
    notes: str = ""


def at_most(
    name: str,
    ours: float,
    baseline: str,
    base: float,
    limit: float,
    *,
    minio: float | None = None,
    notes: str = "",
) -> Row:
    """A row whose target is a ceiling on ours / baseline (time)."""
    ratio = ours / base
    return Row(
        name,
        human(ours),
        baseline,
        human(base),
        f"{ratio:.2f}x",
        f"≤ {limit:g}x",
        "yes" if ratio <= limit else "**no**",
        human(minio) if minio is not None else "",
        notes,
    )


def at_least(
    name: str,
    ours: str,
    baseline: str,
    base: str,
    ratio: float,
    limit: float,
    what: str,
    notes: str = "",
) -> Row:
    """A row whose target is a floor on a ratio where higher is better."""
    return Row(
        name,
        ours,
        baseline,
        base,
        f"{ratio:.2f}x",
        f"≥ {limit:g}x {what}",
        "yes" if ratio >= limit else "**no**",
        notes=notes,
    )


def print_rows(rows: list[Row]) -> None:
    header = [
        "row",
        "objectstore-s3",
        "baseline",
        "time",
        "ratio",
        "target",
        "met",
        "minio",
        "notes",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        cells = [
            row.name,
            row.ours,
            row.baseline,
            row.base_time,
            row.ratio,
            row.target,
            row.met,
            row.minio,
            row.notes,
        ]
        print("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |", flush=True)


# -- the setting: one server, the clients on it ---------------------------------------------


@dataclass
class Bench:
    server: SeaweedServer
    folder: Path
    scale: Scale
    boto: Any = field(init=False)
    obs: S3Store = field(init=False)
    minio: Minio = field(init=False)
    opened: list[ObjectStore] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.boto = raw_client(self.server)
        self.obs = S3Store(
            BUCKET,
            endpoint=self.server.url,
            region="us-east-1",
            access_key_id=self.server.access_key_id,
            secret_access_key=self.server.secret_access_key,
            client_options={"allow_http": True},
        )
        self.minio = Minio(
            f"127.0.0.1:{self.server.port}",
            access_key=self.server.access_key_id,
            secret_key=self.server.secret_access_key,
            secure=False,
            region="us-east-1",
        )

    def store(self, name: str, **overrides: Any) -> ObjectStore:
        """A store with its own cache folder (diskcache keeps size_limit in the folder)."""
        values = {
            **BIG,
            "organization_id": name,
            "cache_dir": self.folder / "caches" / name,
            **overrides,
        }
        store = ObjectStore(settings_for(self.server, self.folder, **values))
        self.opened.append(store)
        return store

    def put_raw(self, keys: list[str], payload: bytes) -> None:
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda key: self.boto.put_object(Bucket=BUCKET, Key=key, Body=payload), keys
                )
            )

    def close(self) -> None:
        for store in self.opened:
            try:
                store.close()
            except Exception as exc:
                print(f"(closing a store: {exc})", file=sys.stderr)


class Requests:
    """Counts the requests one store sends (the backend's on_request hook)."""

    def __init__(self, store: ObjectStore) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        store._connection().on_request(  # type: ignore[attr-defined]
            lambda operation, key: self.counts.update([operation])
        )

    def total(self) -> int:
        return sum(self.counts.values())


def counted(action: Callable[[], object], calls: list[int]) -> Action:
    def run() -> object:
        calls[0] += 1
        return action()

    return run


def minio_get(client: Minio, key: str) -> bytes:
    response = client.get_object(BUCKET, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


# -- sections -----------------------------------------------------------------------------


def section_saves(b: Bench) -> list[Row]:
    """Rows 1 and 11 (save): write-through saves, new keys and overwrites, both sizes."""
    stores = {
        "boto3": b.store("save-boto3"),
        "obstore": b.store("save-obstore", transport="obstore"),
    }
    counters = {name: Requests(store) for name, store in stores.items()}
    rows: list[Row] = []
    for size in (1 * KiB, 64 * KiB):
        for kind in ("new key", "overwrite"):
            rows += save_rows(b, stores, counters, size, kind)
    return rows


def save_rows(
    b: Bench,
    stores: dict[str, ObjectStore],
    counters: dict[str, Requests],
    size: int,
    kind: str,
) -> list[Row]:
    obs, mn = b.obs, b.minio
    payload = os.urandom(size)
    tag = f"{size // KiB} KiB"
    names = {
        label: fresh_keys(f"{label}-{size}")
        for label in ("boto3", "obstore", "minio", "s-boto3", "s-obstore")
    }

    def key(label: str) -> str:
        return next(names[label]) if kind == "new key" else f"{label}-{size}-over"

    calls = {"boto3": [0], "obstore": [0]}
    before = {name: counter.total() for name, counter in counters.items()}
    actions: dict[str, Action] = {
        "store boto3": counted(
            lambda: stores["boto3"].save(key("s-boto3"), payload), calls["boto3"]
        ),
        "store obstore": counted(
            lambda: stores["obstore"].save(key("s-obstore"), payload), calls["obstore"]
        ),
        "boto3": lambda: b.boto.put_object(Bucket=BUCKET, Key=key("boto3"), Body=payload),
        "obstore": lambda: obstore.put(obs, key("obstore"), payload),
        "minio": lambda: mn.put_object(BUCKET, key("minio"), io.BytesIO(payload), size),
    }
    t = per_call(actions, b.scale)
    per_save = {
        name: (counters[name].total() - before[name]) / max(calls[name][0], 1) for name in counters
    }
    note = "If-None-Match: *" if kind == "new key" else "If-Match"
    return [
        at_most(
            f"1. save, {kind}, {tag} (boto3 transport)",
            t["store boto3"],
            "boto3 put_object",
            t["boto3"],
            1.15,
            minio=t["minio"],
            notes=f"{per_save['boto3']:.2f} requests/save; the PUT carries {note}; "
            + cpu_note(t, "store boto3", "boto3"),
        ),
        at_most(
            f"11. save, {kind}, {tag} (obstore transport)",
            t["store obstore"],
            "obstore put",
            t["obstore"],
            1.2,
            notes=f"{per_save['obstore']:.2f} requests/save; "
            + cpu_note(t, "store obstore", "obstore"),
        ),
    ]


def section_reads(b: Bench) -> list[Row]:
    """Rows 2 and 11 (read, contains_key): uncached (a store whose cache holds nothing)."""
    rows: list[Row] = []
    obs, mn = b.obs, b.minio
    writer = {
        "boto3": b.store("read-boto3"),
        "obstore": b.store("read-obstore", transport="obstore"),
    }
    reader = {
        "boto3": b.store("read-boto3", cache_size_limit=0, cache_dir=b.folder / "caches/r-b"),
        "obstore": b.store(
            "read-obstore",
            transport="obstore",
            cache_size_limit=0,
            cache_dir=b.folder / "caches/r-o",
        ),
    }
    for size in (1 * KiB, 64 * KiB):
        payload = os.urandom(size)
        tag = f"{size // KiB} KiB"
        key = f"value-{size}"
        for store in writer.values():
            store.save(key, payload)
        b.boto.put_object(Bucket=BUCKET, Key=f"raw/{key}", Body=payload)
        raw = f"raw/{key}"
        t = per_call(
            {
                "store boto3": lambda key=key: reader["boto3"].read_bytes(key),
                "store obstore": lambda key=key: reader["obstore"].read_bytes(key),
                "boto3": lambda raw=raw: b.boto.get_object(Bucket=BUCKET, Key=raw)["Body"].read(),
                "obstore": lambda raw=raw: obstore.get(obs, raw).bytes(),
                "minio": lambda raw=raw: minio_get(mn, raw),
            },
            b.scale,
        )
        rows.append(
            at_most(
                f"2. uncached read, {tag} (boto3 transport)",
                t["store boto3"],
                "boto3 get_object",
                t["boto3"],
                1.10,
                minio=t["minio"],
                notes=cpu_note(t, "store boto3", "boto3"),
            )
        )
        rows.append(
            at_most(
                f"11. uncached read, {tag} (obstore transport)",
                t["store obstore"],
                "obstore get",
                t["obstore"],
                1.2,
                notes=cpu_note(t, "store obstore", "obstore"),
            )
        )
    key, raw = "value-1024", "raw/value-1024"
    t = per_call(
        {
            "store boto3": lambda: reader["boto3"].contains_key(key),
            "store obstore": lambda: reader["obstore"].contains_key(key),
            "boto3": lambda: b.boto.head_object(Bucket=BUCKET, Key=raw),
            "obstore": lambda: obstore.head(obs, raw),
            "minio": lambda: mn.stat_object(BUCKET, raw),
        },
        b.scale,
    )
    rows.append(
        at_most(
            "2. contains_key, uncached (boto3 transport)",
            t["store boto3"],
            "boto3 head_object",
            t["boto3"],
            1.05,
            minio=t["minio"],
            notes=cpu_note(t, "store boto3", "boto3"),
        )
    )
    rows.append(
        at_most(
            "11. contains_key, uncached (obstore transport)",
            t["store obstore"],
            "obstore head",
            t["obstore"],
            1.2,
            notes=cpu_note(t, "store obstore", "obstore"),
        )
    )
    return rows


def section_keys(b: Bench) -> list[Row]:
    """Rows 3 and 11 (keys): a listing of the organization's keys."""
    obs, mn = b.obs, b.minio
    count = b.scale.listed
    b.put_raw([f"listed/k{index:05d}" for index in range(count)], b"x" * 100)
    stores = {
        "boto3": b.store("listed"),
        "obstore": b.store("listed", transport="obstore", cache_dir=b.folder / "caches/listed-o"),
    }
    assert len(stores["boto3"].keys) == count

    def boto3_list() -> list[str]:
        paginator = b.boto.get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=BUCKET, Prefix="listed/")
            for item in page.get("Contents", [])
        ]

    t = per_call(
        {
            "store boto3": lambda: stores["boto3"].keys,
            "store obstore": lambda: stores["obstore"].keys,
            "boto3": boto3_list,
            "obstore": lambda: obstore.list(obs, "listed/").collect(),
            "minio": lambda: list(mn.list_objects(BUCKET, prefix="listed/", recursive=True)),
        },
        b.scale,
        per_round=max(b.scale.per_round // 20, 2),
    )
    tag = f"{count:,}"
    return [
        at_most(
            f"3. keys of {tag} (boto3 transport)",
            t["store boto3"],
            "boto3 list_objects_v2 paginator",
            t["boto3"],
            1.10,
            minio=t["minio"],
            notes=cpu_note(t, "store boto3", "boto3"),
        ),
        at_most(
            f"11. keys of {tag} (obstore transport)",
            t["store obstore"],
            "obstore list",
            t["obstore"],
            1.5,
            notes=cpu_note(t, "store obstore", "obstore"),
        ),
    ]


def section_cached(b: Bench) -> list[Row]:
    """Row 4: a cached 64 KiB read against diskcache's own get in the same kind of folder."""
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


def section_write_behind(b: Bench) -> list[Row]:
    """Rows 5 and 11 (flush): write-behind saves of distinct keys, then flush."""
    obs = b.obs
    payload = os.urandom(KiB)
    count = b.scale.flushed

    def store_run(transport: str) -> Callable[[int], float]:
        def run(round_: int) -> float:
            store = b.store(
                f"wb-{transport}-{round_}", transport=transport, persistence_interval_seconds=60
            )
            store.save("warm", payload)  # the connection, the probe and the lease
            store.flush()
            keys = [f"k{index:05d}" for index in range(count)]

            def work() -> None:
                for key in keys:
                    store.save(key, payload)
                store.flush()

            seconds = timed(work)
            store.close()
            return seconds

        return run

    def boto3_run(round_: int) -> float:
        keys = [f"wb-raw-{round_}/k{index:05d}" for index in range(count)]
        return timed(lambda: b.put_raw(keys, payload))

    def obstore_run(round_: int) -> float:
        keys = [f"wb-obs-{round_}/k{index:05d}" for index in range(count)]

        async def main() -> None:
            gate = asyncio.Semaphore(8)

            async def one(key: str) -> None:
                async with gate:
                    await obstore.put_async(obs, key, payload)

            await asyncio.gather(*(one(key) for key in keys))

        return timed(lambda: asyncio.run(main()))

    t = per_round(
        {
            "store boto3": store_run("boto3"),
            "store obstore": store_run("obstore"),
            "boto3": boto3_run,
            "obstore": obstore_run,
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


def section_threads(b: Bench) -> list[Row]:
    """Row 6: threads sharing one write-through store vs boto3 with a client per thread."""
    rows = []
    payload = os.urandom(KiB)
    store = b.store("threads")
    store.save("warm", payload)
    each = b.scale.per_thread
    for threads in (4, 16):
        clients = [raw_client(b.server) for _ in range(threads)]
        for client in clients:
            client.put_object(Bucket=BUCKET, Key="warm", Body=payload)

        def in_threads(work: Callable[[int], None], threads: int = threads) -> float:
            with ThreadPoolExecutor(threads) as pool:
                return timed(lambda: list(pool.map(work, range(threads))))

        def store_run(round_: int, threads: int = threads) -> float:
            def work(thread: int) -> None:
                for index in range(each):
                    store.save(f"t{threads}-{round_}/{thread}-{index}", payload)

            return in_threads(work)

        def boto3_run(round_: int, threads: int = threads, clients: list[Any] = clients) -> float:
            def work(thread: int) -> None:
                client = clients[thread]
                for index in range(each):
                    client.put_object(
                        Bucket=BUCKET, Key=f"raw-t{threads}-{round_}/{thread}-{index}", Body=payload
                    )

            return in_threads(work)

        saves = threads * each
        t = per_round({"store": store_run, "boto3": boto3_run}, b.scale.rounds, ops=saves)
        rows.append(
            at_least(
                f"6. {threads} threads sharing one store, 1 KiB write-through saves",
                f"{saves / t['store']:.0f} saves/s",
                "boto3, a client per thread",
                f"{saves / t['boto3']:.0f} puts/s",
                t["boto3"] / t["store"],
                0.9,
                "throughput",
                notes=cpu_note(t, "store", "boto3"),
            )
        )
    return rows


def section_many(b: Bench) -> list[Row]:
    """Row 7: iterating / read_many over uncached values vs one read_bytes per key, on
    loopback (both transports) and behind a proxy that adds 10 ms to every answer (the
    round trip to a real S3 region, where fetching ahead is what counts)."""
    count = b.scale.values
    b.put_raw([f"many/k{index:05d}" for index in range(count)], os.urandom(KiB))
    rows = []
    for transport in ("boto3", "obstore"):
        store = b.store("many", cache_size_limit=0, transport=transport)
        rows += many_rows(b, store, f"{count:,} uncached 1 KiB values, {transport}", b.scale.rounds)
    from tests.faultproxy import FaultProxy
    from tests.faultproxy_rules import Fault

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
    keys = store.keys
    runs: dict[str, Callable[[int], float]] = {
        "one by one": lambda _: timed(lambda: [store.read_bytes(key) for key in keys]),
        "iterate": lambda _: timed(lambda: list(store)),
        "read_many": lambda _: timed(lambda: list(store.read_many(keys))),
    }
    t = per_round(runs, rounds, ops=len(keys))

    def peak(action: Action) -> str:
        tracemalloc.start()
        action()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return f"peak {top / 2**20:.1f} MiB (tracemalloc)"

    def consume(values: Any) -> None:
        for _ in values:
            pass

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


# -- fresh processes: import, a whole `stat` ---------------------------------------------------

IMPORT = (
    "import time; t = time.perf_counter(); import objectstore_s3; print(time.perf_counter() - t)"
)
BOTO3_HEAD = """
import os, boto3
from botocore.config import Config
c = boto3.client("s3", endpoint_url=os.environ["OBJECTSTORE_ENDPOINT_URL"],
    aws_access_key_id=os.environ["OBJECTSTORE_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["OBJECTSTORE_SECRET_ACCESS_KEY"], region_name="us-east-1",
    config=Config(s3={"addressing_style": "path"}))
print(c.head_object(Bucket="bench", Key=os.environ["KEY"])["ContentLength"])
"""
OBSTORE_HEAD = """
import os, obstore
from obstore.store import S3Store
s = S3Store("bench", endpoint=os.environ["OBJECTSTORE_ENDPOINT_URL"], region="us-east-1",
    access_key_id=os.environ["OBJECTSTORE_ACCESS_KEY_ID"],
    secret_access_key=os.environ["OBJECTSTORE_SECRET_ACCESS_KEY"],
    client_options={"allow_http": True})
print(obstore.head(s, os.environ["KEY"])["size"])
"""
MINIO_STAT = """
import os
from minio import Minio
m = Minio(os.environ["OBJECTSTORE_ENDPOINT_URL"].split("//")[1],
    access_key=os.environ["OBJECTSTORE_ACCESS_KEY_ID"],
    secret_key=os.environ["OBJECTSTORE_SECRET_ACCESS_KEY"], secure=False, region="us-east-1")
print(m.stat_object("bench", os.environ["KEY"]).size)
"""


def process_env(b: Bench, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("OBJECTSTORE_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        OBJECTSTORE_ENDPOINT_URL=b.server.url,
        OBJECTSTORE_BUCKET=BUCKET,
        OBJECTSTORE_ACCESS_KEY_ID=b.server.access_key_id,
        OBJECTSTORE_SECRET_ACCESS_KEY=b.server.secret_access_key,
        OBJECTSTORE_ORGANIZATION_ID="procs",
        OBJECTSTORE_LOCAL_ROOT=str(b.folder / "local"),
        **extra,
    )
    return env


def section_processes(b: Bench) -> list[Row]:
    """Rows 8 and 11 (stat): `import objectstore_s3`, and whole `stat` processes."""
    b.boto.put_object(Bucket=BUCKET, Key="procs/value", Body=b"x" * KiB)
    cwd = b.folder / "procs"
    cwd.mkdir(exist_ok=True)
    base = process_env(b, KEY="procs/value")

    def run(args: list[str], env: dict[str, str]) -> float:
        return timed(
            lambda: subprocess.run(args, env=env, cwd=cwd, check=True, capture_output=True)
        )

    stat = [sys.executable, "-m", "objectstore_s3", "stat", "value"]
    caches = {
        "boto3": str(b.folder / "caches/procs-b"),
        "obstore": str(b.folder / "caches/procs-o"),
    }
    commands = {
        "store boto3": (stat, {**base, "OBJECTSTORE_CACHE_DIR": caches["boto3"]}),
        "store obstore": (
            stat,
            {
                **base,
                "OBJECTSTORE_CACHE_DIR": caches["obstore"],
                "OBJECTSTORE_TRANSPORT": "obstore",
            },
        ),
        "boto3": ([sys.executable, "-c", BOTO3_HEAD], base),
        "obstore": ([sys.executable, "-c", OBSTORE_HEAD], base),
        "minio": ([sys.executable, "-c", MINIO_STAT], base),
    }
    for args, env in commands.values():
        run(args, env)  # warm the page cache
    imports: list[float] = []

    def import_run(_: int) -> float:
        out = subprocess.run(
            [sys.executable, "-c", IMPORT],
            env=base,
            cwd=cwd,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        imports.append(float(out.strip()))
        return imports[-1]

    runs: dict[str, Callable[[int], float]] = {"import": import_run}
    for label, (args, env) in commands.items():
        runs[label] = lambda _, args=args, env=env: run(args, env)
    t = per_round(runs, max(b.scale.processes, 5))
    importtime = import_profile(base, cwd)
    return [
        Row(
            "8. `import objectstore_s3` (fresh process)",
            human(t["import"]),
            "(absolute)",
            "",
            "",
            "≤ 100 ms",
            "yes" if t["import"] <= 0.1 else "**no**",
            notes=importtime,
        ),
        at_most(
            "8. whole `objectstore-s3 stat KEY` process (boto3 transport)",
            t["store boto3"],
            "python: import boto3, client, head_object",
            t["boto3"],
            1.1,
            minio=t["minio"],
            notes="minio: a process doing stat_object",
        ),
        at_most(
            "11. whole `objectstore-s3 stat KEY` process (obstore transport)",
            t["store obstore"],
            "python: import obstore, S3Store, head",
            t["obstore"],
            3,
        ),
    ]


def import_profile(env: dict[str, str], cwd: Path) -> str:
    """The heaviest top-level imports of `import objectstore_s3` (python -X importtime)."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import objectstore_s3"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    ).stderr
    heavy: list[tuple[int, str]] = []
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            depth = (len(name) - len(name.lstrip())) // 2
            if depth <= 1:
                heavy.append((int(parts[1]), name.strip()))
    heavy.sort(reverse=True)
    return "heaviest: " + ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in heavy[1:4])


# -- large files (bench_files, each operation in its own process) ------------------------------


def section_files(b: Bench) -> list[Row]:
    """Row 9: get_file_path and sync-back against download_file / upload_file."""
    size, rounds = b.scale.file_mib, b.scale.file_rounds
    results = bench_files.measure(b.server, b.folder, size, rounds)

    def median(operation: str) -> float:
        return statistics.median(sample["seconds"] for sample in results[operation])

    def rss(operation: str) -> float:
        return max(sample["rss_mib"] for sample in results[operation])

    rows = []
    for ours, theirs, label, call in (
        ("store-get", "boto3-download", f"9. get_file_path of {size} MiB", "download_file"),
        ("store-sync", "boto3-upload", f"9. sync-back (save(key)) of {size} MiB", "upload_file"),
    ):
        o, t = median(ours), median(theirs)
        peak = rss(ours)
        rows.append(
            at_least(
                label,
                f"{o:.2f} s ({size / o:.0f} MiB/s)",
                f"boto3 {call}, same TransferConfig",
                f"{t:.2f} s ({size / t:.0f} MiB/s)",
                t / o,
                0.95,
                "throughput",
                notes=f"peak RSS {peak:.0f} MiB ({'<' if peak < 200 else '**≥**'} 200 MB target; "
                f"boto3 {rss(theirs):.0f} MiB); median of {rounds}",
            )
        )
    return rows


# -- ledger contention (16 processes, one organization) ------------------------------------------


def ledger_worker(spec: dict[str, Any]) -> None:
    """One contending process: save `saves` new keys when told to go; report as JSON."""
    server = SeaweedServer(
        Path(spec["data_dir"]),
        port=spec["port"],
        access_key_id=spec["key"],
        secret_access_key=spec["secret"],
    )
    folder = Path(spec["folder"])
    store = ObjectStore(
        settings_for(server, folder, organization_id=spec["org"], cache_dir=folder / "cache")
    )
    backend = store._connection()
    counts: collections.Counter[str] = collections.Counter()

    def on_request(operation: str, key: str | None) -> None:
        if key is not None and key.endswith("/usage.json"):
            counts[f"ledger {operation}"] += 1

    backend.on_request(on_request)  # type: ignore[attr-defined]

    # A 412 on the ledger's PUT is a lost race, retried (quota._update). The capability
    # probe's PUTs are refused with 412 by design: only the ledger's are counted.
    def before_put(params: Any = None, context: Any = None, **_: Any) -> None:
        if params is not None and context is not None:
            context["bench_ledger"] = str(params.get("Key", "")).endswith("/usage.json")

    def after_put(http_response: Any = None, context: Any = None, **_: Any) -> None:
        if http_response is not None and http_response.status_code == 412 and context:
            counts["ledger 412" if context.get("bench_ledger") else "other 412"] += 1

    events = backend.client.meta.events  # type: ignore[attr-defined]
    events.register("before-parameter-build.s3.PutObject", before_put)
    events.register("after-call.s3.PutObject", after_put)
    payload = os.urandom(KiB)
    print("ready", flush=True)
    sys.stdin.readline()
    durations = []
    for index in range(spec["saves"]):
        started = time.perf_counter()
        store.save(f"{spec['name']}/{index:04d}", payload)
        durations.append(time.perf_counter() - started)
    during = dict(counts)
    store.close()
    print(json.dumps({"durations": durations, "counts": during}), flush=True)


def section_ledger(b: Bench) -> list[Row]:
    """Row 10: 16 processes saving new keys into one organization, quota on."""
    spec = {
        "data_dir": str(b.server.data_dir),
        "port": b.server.port,
        "key": b.server.access_key_id,
        "secret": b.server.secret_access_key,
        "saves": b.scale.ledger_saves,
    }
    env = process_env(b)
    p50s, p99s, ratios, firsts, warm_ratios = [], [], [], [], []
    totals: collections.Counter[str] = collections.Counter()
    saves = 0
    for round_ in range(b.scale.ledger_rounds):
        org = f"contended-{round_}"
        workers = []
        for index in range(16):
            folder = b.folder / "ledger" / f"{round_}-{index}"
            folder.mkdir(parents=True)
            worker_spec = {**spec, "org": org, "name": f"p{index}", "folder": str(folder)}
            workers.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--worker", json.dumps(worker_spec)],
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        durations: list[float] = []
        warm: list[float] = []  # each process's saves after its first
        for worker in workers:
            out, _ = worker.communicate(timeout=600)
            result = json.loads(out.strip().splitlines()[-1])
            durations += result["durations"]
            firsts.append(result["durations"][0])
            warm += result["durations"][1:]
            totals.update(result["counts"])
        saves += len(durations)
        p50 = statistics.median(durations)
        p99 = statistics.quantiles(durations, n=100)[98]
        p50s.append(p50)
        p99s.append(p99)
        ratios.append(p99 / p50)
        warm_ratios.append(statistics.quantiles(warm, n=100)[98] / statistics.median(warm))
    ratio = statistics.median(ratios)
    warm_ratio = statistics.median(warm_ratios)
    gets, puts, conflicts = (
        totals["ledger GetObject"],
        totals["ledger PutObject"],
        totals["ledger 412"],
    )
    return [
        Row(
            f"10. ledger contention: 16 processes x {b.scale.ledger_saves} new-key saves, one org",
            f"p50 {human(statistics.median(p50s))}, p99 {human(statistics.median(p99s))}",
            "its own median",
            "",
            f"p99/p50 {ratio:.2f}x",
            "p99 ≤ 3x median",
            "yes" if ratio <= 3 else "**no**",
            notes=f"per save: {puts / saves:.3f} ledger PUTs, {gets / saves:.3f} ledger GETs, "
            f"{conflicts / saves:.3f} retries (412 on the ledger's PUT); first save of a "
            f"process: median {human(statistics.median(firsts))}; {b.scale.ledger_rounds} round(s)",
        ),
        Row(
            "10. the same, each process's saves after its first",
            "",
            "their own median",
            "",
            f"p99/p50 {warm_ratio:.2f}x",
            "p99 ≤ 3x median",
            "yes" if warm_ratio <= 3 else "**no**",
            notes="the first save of a process probes the server's conditional writes and "
            "takes its lease, all 16 at once",
        ),
    ]


# -- main --------------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[Bench], list[Row]]] = {
    "saves": section_saves,
    "reads": section_reads,
    "keys": section_keys,
    "cached": section_cached,
    "write-behind": section_write_behind,
    "threads": section_threads,
    "many": section_many,
    "processes": section_processes,
    "files": section_files,
    "ledger": section_ledger,
}


def main() -> None:
    # A terminated run still stops its server (the `finally` of common.seaweed).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, small counts")
    parser.add_argument("--rounds", type=int, help="rounds of the per-call rows")
    parser.add_argument("--only", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    if args.rounds:
        scale = Scale(**{**scale.__dict__, "rounds": args.rounds})
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    started = time.perf_counter()
    rows: list[Row] = []
    with seaweed() as (server, folder):
        bench = Bench(server, folder, scale)
        bench.boto.create_bucket(Bucket=BUCKET)
        try:
            for name in chosen:
                began = time.perf_counter()
                try:
                    rows += SECTIONS[name](bench)
                except Exception as exc:
                    traceback.print_exc()
                    rows.append(Row(f"{name}: failed", f"{type(exc).__name__}: {exc}"))
                print(f"({name}: {time.perf_counter() - began:.0f} s)", file=sys.stderr, flush=True)
        finally:
            bench.close()
    print(
        f"\nobjectstore-s3 benchmark, SeaweedFS on loopback, {scale.rounds} rounds "
        f"({'quick' if args.quick else 'full'}), {time.perf_counter() - started:.0f} s, "
        f"boto3 {boto3.__version__}, obstore {obstore.__version__}\n"
    )
    print_rows(rows)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        ledger_worker(json.loads(sys.argv[2]))
    else:
        main()
