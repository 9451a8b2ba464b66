"""The obstore transport against obstore itself (and the boto3 transport for reference).

    python bench/bench_transport.py [ITERATIONS]      (default 300)

Starts its own SeaweedFS, then times per call (median of ITERATIONS, taken in rounds that
alternate the clients, so that a noisy moment hits all of them): a 1 KiB save
(write-through), an uncached read and contains_key (a store whose cache holds nothing:
every read is a GET, every contains_key a HEAD) and `keys` of 1,000 keys. Rows: obstore's
own put / get / head / list on the same server; obstore's put with If-Match (the
precondition every save of a known key carries, for exact quotas); the obstore transport
alone (`ObstoreBackend`, no store around it); the store on each transport. Ratios are
to obstore's own call.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import obstore
from obstore.store import S3Store

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import create_bucket, seaweed, settings_for

from objectstore_s3 import ObjectStore
from objectstore_s3.obstore_backend import ObstoreBackend
from objectstore_s3.server import SeaweedServer, resolve_endpoint

PAYLOAD = bytes(range(256)) * 4  # 1 KiB
KEYS = 1000
ROUNDS = 6
COLUMNS = ["save", "read", "contains_key", "keys"]
Row = dict[str, Callable[[], object]]


def raw_store(server: SeaweedServer) -> S3Store:
    """obstore as a user would configure it for this server."""
    return S3Store(
        "bench",
        endpoint=server.url,
        region="us-east-1",
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        client_options={"allow_http": True},
    )


def raw_row(raw: S3Store) -> tuple[Row, Row]:
    for index in range(KEYS):
        obstore.put(raw, f"raw-list/k{index:04d}", PAYLOAD)
    obstore.put(raw, "raw/read", PAYLOAD)
    etag = [obstore.put(raw, "raw/save-if-match", PAYLOAD)["e_tag"]]

    def put_if_match() -> None:
        mode: obstore.UpdateVersion = {"e_tag": etag[0]}
        etag[0] = obstore.put(raw, "raw/save-if-match", PAYLOAD, mode=mode)["e_tag"]

    plain: Row = {
        "save": lambda: obstore.put(raw, "raw/save", PAYLOAD),
        "read": lambda: obstore.get(raw, "raw/read").bytes(),
        "contains_key": lambda: obstore.head(raw, "raw/read"),
        "keys": lambda: obstore.list(raw, "raw-list/").collect(),
    }
    return plain, {"save": put_if_match}


def backend_row(backend: ObstoreBackend) -> Row:
    for index in range(KEYS):
        backend.put(f"list/k{index:04d}", PAYLOAD)
    backend.put("read", PAYLOAD)
    etag = [backend.put("save", PAYLOAD).etag]

    def save() -> None:
        etag[0] = backend.put("save", PAYLOAD, if_match=etag[0]).etag

    return {
        "save": save,
        "read": lambda: backend.get("read"),
        "contains_key": lambda: backend.head("read"),
        "keys": lambda: list(backend.scoped("list/").list()),
    }


def store_row(stores: tuple[ObjectStore, ObjectStore, ObjectStore]) -> Row:
    store, reader, lister = stores
    for index in range(KEYS):
        lister.save(f"k{index:04d}", PAYLOAD)
    store.save("read", PAYLOAD)
    return {
        "save": lambda: store.save("save", PAYLOAD),
        "read": lambda: reader.read_bytes("read"),
        "contains_key": lambda: reader.contains_key("read"),
        "keys": lambda: lister.keys,
    }


def measure(rows: dict[str, Row], iterations: int) -> dict[str, dict[str, float]]:
    samples: dict[str, dict[str, list[float]]] = {label: {} for label in rows}
    for column in COLUMNS:
        count = iterations if column != "keys" else max(iterations // 10, 12)
        per_round = max(count // ROUNDS, 1)
        labels = [label for label in rows if column in rows[label]]
        for label in labels:
            for _ in range(5):
                rows[label][column]()  # warm-up
        for round_ in range(ROUNDS):
            for label in labels[round_ % len(labels) :] + labels[: round_ % len(labels)]:
                action = rows[label][column]
                taken = samples[label].setdefault(column, [])
                for _ in range(per_round):
                    started = time.perf_counter()
                    action()
                    taken.append(time.perf_counter() - started)
    return {
        label: {column: statistics.median(values) for column, values in row.items()}
        for label, row in samples.items()
    }


def main(iterations: int) -> None:
    with seaweed() as (server, folder):
        create_bucket(server, folder)
        rows: dict[str, Row] = {}
        rows["obstore"], rows["obstore If-Match"] = raw_row(raw_store(server))
        opened: list[ObjectStore] = []
        for transport in ("obstore", "boto3"):
            org = f"bench-{transport}"
            settings = settings_for(
                server, folder, organization_id=org, transport=transport,
                cache_dir=folder / f"cache-{transport}",
            )  # fmt: skip
            if transport == "obstore":
                scope = ObstoreBackend(settings, resolve_endpoint(settings)).scoped("backend/")
                rows["ObstoreBackend"] = backend_row(scope)
            uncached = {"cache_size_limit": 0, "cache_dir": folder / f"nocache-{transport}"}
            listed = {"organization_id": f"{org}-list"}
            stores = (
                ObjectStore(settings),
                ObjectStore(settings.model_copy(update=uncached)),
                ObjectStore(settings.model_copy(update=listed)),
            )
            opened.extend(stores)
            rows[f"store ({transport})"] = store_row(stores)
        try:
            report(measure(rows, iterations))
        finally:
            for store in opened:
                store.close()


def report(results: dict[str, dict[str, float]]) -> None:
    raw = results["obstore"]
    print(f"{'median per call':<20}" + "".join(f"{name:>22}" for name in COLUMNS))
    for label, values in results.items():
        cells = [
            f"{values[c] * 1e3:8.3f} ms ({values[c] / raw[c]:4.2f}x)" if c in values else ""
            for c in COLUMNS
        ]
        print(f"{label:<20}" + "".join(f"{cell:>22}" for cell in cells))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
