"""Row 9, large local files: get_file_path and sync-back against boto3's download_file /
upload_file with the same tuned TransferConfig (16 MiB parts, 8 threads).

Each operation runs in its own process (this module with `--worker`), so its peak RSS
(VmHWM) is its own; the order rotates from round to round. The benchmark runs it on its
own server at 256 MiB; alone, on a server of its own, at 1 GiB by default:

    python -m bench.sections.large_files [--size-mib 1024] [--rounds 3]

A worker imports only this module, `bench.measure` and `bench.server` (boto3 and
objectstore_s3), not the other clients: their memory would count in its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boto3.s3.transfer import TransferConfig

from bench.measure import Row, at_least, print_table
from bench.server import (
    BUCKET,
    create_bucket,
    pythonpath,
    raw_client,
    seaweed,
    server_from,
    server_spec,
    settings_for,
    worker_command,
)
from objectstore_s3 import ObjectStore
from objectstore_s3.server.seaweedfs import SeaweedServer

if TYPE_CHECKING:  # not at run time: a worker must not import the other clients
    from bench.harness import Bench

WORKER = "bench.sections.large_files"  # this module, run with -m in each worker process
OPERATIONS = ["boto3-download", "store-get", "boto3-upload", "store-sync"]
Results = dict[str, list[dict[str, float]]]

MiB = 1024 * 1024
CONFIG = TransferConfig(
    multipart_threshold=16 * MiB, multipart_chunksize=16 * MiB, max_concurrency=8
)


def run(b: Bench) -> list[Row]:
    """get_file_path and sync-back against download_file / upload_file."""
    size, rounds = b.scale.file_mib, b.scale.file_rounds
    results = measure(b.server, b.folder, size, rounds)
    rows = []
    for ours, theirs, label, call in (
        ("store-get", "boto3-download", f"9. get_file_path of {size} MiB", "download_file"),
        ("store-sync", "boto3-upload", f"9. sync-back (save(key)) of {size} MiB", "upload_file"),
    ):
        o, t = median(results, ours, "seconds"), median(results, theirs, "seconds")
        peak = worst_rss(results, ours)
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
                f"boto3 {worst_rss(results, theirs):.0f} MiB); median of {rounds}",
            )
        )
    return rows


def median(results: Results, operation: str, field: str) -> float:
    return statistics.median(sample[field] for sample in results[operation])


def worst_rss(results: Results, operation: str) -> float:
    return max(sample["rss_mib"] for sample in results[operation])


def measure(server: SeaweedServer, folder: Path, size_mib: int, rounds: int) -> Results:
    """Seconds and peak RSS (MiB) of each operation in each round, on a running server;
    the order of the operations rotates from round to round."""
    folder = folder / f"files-{size_mib}"
    folder.mkdir(parents=True, exist_ok=True)
    source, changed = folder / "source.bin", folder / "changed.bin"
    write_file(source, size_mib, salt=1)
    write_file(changed, size_mib, salt=2)
    client = raw_client(server)
    client.upload_file(str(source), BUCKET, "bench/big", Config=CONFIG)
    for round_ in range(rounds):
        client.upload_file(str(source), BUCKET, f"bench/sync-{round_}", Config=CONFIG)
    spec = {**server_spec(server), "folder": str(folder / "runs"), "changed": str(changed)}
    results: Results = {}
    for round_ in range(rounds):
        shift = round_ % len(OPERATIONS)
        for operation in OPERATIONS[shift:] + OPERATIONS[:shift]:
            out = subprocess.run(
                worker_command(
                    WORKER, "--worker", operation, json.dumps({**spec, "round": round_})
                ),
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": pythonpath()},
            ).stdout
            results.setdefault(operation, []).append(json.loads(out.strip().splitlines()[-1]))
    for path in (source, changed):
        path.unlink()
    return results


def write_file(path: Path, size_mib: int, salt: int) -> None:
    block = os.urandom(MiB)
    with path.open("wb") as handle:
        for index in range(size_mib):
            handle.write((index + salt * 100_000).to_bytes(4, "big") + block[4:])


# -- the worker: one measured operation in its own process --------------------------------------


def worker(operation: str, spec: dict[str, Any]) -> None:
    """One measured operation in this process; prints seconds and peak RSS as JSON."""
    server = server_from(spec)
    run = Path(spec["folder"]) / f"{operation}-{spec['round']}"
    run.mkdir(parents=True)
    # Every worker has made this client, the store's too: its memory is in every peak RSS.
    client = raw_client(server)
    if operation.startswith("boto3-"):
        seconds = raw_operation(client, operation, spec, run)
    else:
        seconds = store_operation(server, operation, spec, run)
    shutil.rmtree(run)
    print(json.dumps({"seconds": seconds, "rss_mib": peak_rss_mib()}))


def raw_operation(client: Any, operation: str, spec: dict[str, Any], run: Path) -> float:
    if operation == "boto3-download":
        started = time.perf_counter()
        client.download_file(BUCKET, "bench/big", str(run / "big"), Config=CONFIG)
        return time.perf_counter() - started
    # Like the store's case: the file was just written (its pages still dirty).
    fresh = run / "changed"
    shutil.copyfile(spec["changed"], fresh)
    started = time.perf_counter()
    client.upload_file(str(fresh), BUCKET, f"raw-upload-{spec['round']}", Config=CONFIG)
    return time.perf_counter() - started


def store_operation(
    server: SeaweedServer, operation: str, spec: dict[str, Any], run: Path
) -> float:
    with ObjectStore(settings_for(server, run)) as store:
        # Its connection made before the clock starts, as the baseline's client is.
        store.contains_key("warm-up")
        if operation == "store-get":
            started = time.perf_counter()
            store.get_file_path("big")
            return time.perf_counter() - started
        # store-sync: materialize, change the file, time the sync back
        path = store.get_file_path(f"sync-{spec['round']}")
        shutil.copyfile(spec["changed"], path)
        started = time.perf_counter()
        assert store.save(f"sync-{spec['round']}")
        return time.perf_counter() - started


def peak_rss_mib() -> float:
    """This process's own peak RSS: VmHWM of its memory map. Not ru_maxrss, which on Linux
    also counts the parent's map that a vfork'd child exec'd from (a big benchmark process
    would show its own size in every worker)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- alone: a server of its own, a table of its own ------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        prog=f"python -m {WORKER}", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with seaweed() as (server, folder):
        create_bucket(server, folder)
        results = measure(server, folder, args.size_mib, args.rounds)
    size = args.size_mib
    rows = []
    for ours, theirs, label in (
        ("store-get", "boto3-download", f"get_file_path of a {size} MiB object"),
        ("store-sync", "boto3-upload", f"sync-back of a changed {size} MiB file"),
    ):
        ours_s, theirs_s = median(results, ours, "seconds"), median(results, theirs, "seconds")
        rows.append(
            [
                label,
                f"{ours_s:.2f} s ({size / ours_s:.0f} MiB/s)",
                f"{worst_rss(results, ours):.0f} MiB",
                f"boto3 {'download_file' if 'get' in ours else 'upload_file'}",
                f"{theirs_s:.2f} s ({size / theirs_s:.0f} MiB/s)",
                f"{worst_rss(results, theirs):.0f} MiB",
                f"{theirs_s / ours_s:.0%}",
            ]
        )
    print_table(
        f"Large files (SeaweedFS on loopback, median of {args.rounds} rounds, each in its own "
        "process; RSS is the worst round)",
        [
            "objectstore-s3",
            "time",
            "peak RSS",
            "baseline",
            "time",
            "peak RSS",
            "throughput vs baseline",
        ],
        rows,
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], json.loads(sys.argv[3]))
    else:
        main()
