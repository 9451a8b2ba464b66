"""Large local files on SeaweedFS: get_file_path and sync-back of 1 GiB, vs raw boto3.

    python bench/bench_files.py [--size-mib 1024] [--rounds 3]

Each operation runs in its own process, so its peak RSS (VmHWM) is its own. The
baseline is boto3's download_file / upload_file with the same tuned TransferConfig
(16 MiB parts, 8 threads) in the same run; the order rotates from round to round.
bench/run.py calls `measure` on its own server, at 256 MiB.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from boto3.s3.transfer import TransferConfig
from common import BUCKET, create_bucket, print_table, raw_client, seaweed, settings_for

from objectstore_s3 import ObjectStore
from objectstore_s3.server.seaweedfs import SeaweedServer

OPERATIONS = ["boto3-download", "store-get", "boto3-upload", "store-sync"]

MiB = 1024 * 1024
CONFIG = TransferConfig(
    multipart_threshold=16 * MiB, multipart_chunksize=16 * MiB, max_concurrency=8
)


def write_file(path: Path, size_mib: int, salt: int) -> None:
    block = os.urandom(MiB)
    with path.open("wb") as handle:
        for index in range(size_mib):
            handle.write((index + salt * 100_000).to_bytes(4, "big") + block[4:])


def worker(operation: str, spec: dict[str, Any]) -> None:
    """One measured operation in this process; prints seconds and peak RSS as JSON."""
    server = SeaweedServer(
        Path(spec["data_dir"]),
        port=spec["port"],
        access_key_id=spec["key"],
        secret_access_key=spec["secret"],
    )
    folder = Path(spec["folder"])
    run = folder / f"{operation}-{spec['round']}"
    run.mkdir(parents=True)
    client = raw_client(server)
    seconds = 0.0
    if operation == "boto3-download":
        started = time.perf_counter()
        client.download_file(BUCKET, "bench/big", str(run / "big"), Config=CONFIG)
        seconds = time.perf_counter() - started
    elif operation == "boto3-upload":
        # Like the store's case: the file was just written (its pages still dirty).
        fresh = run / "changed"
        shutil.copyfile(spec["changed"], fresh)
        started = time.perf_counter()
        client.upload_file(str(fresh), BUCKET, f"raw-upload-{spec['round']}", Config=CONFIG)
        seconds = time.perf_counter() - started
    else:
        settings = settings_for(server, run)
        with ObjectStore(settings) as store:
            # Its connection made before the clock starts, as the baseline's client is.
            store.contains_key("warm-up")
            if operation == "store-get":
                started = time.perf_counter()
                store.get_file_path("big")
                seconds = time.perf_counter() - started
            else:  # store-sync: materialize, change the file, time the sync back
                path = store.get_file_path(f"sync-{spec['round']}")
                shutil.copyfile(spec["changed"], path)
                started = time.perf_counter()
                assert store.save(f"sync-{spec['round']}")
                seconds = time.perf_counter() - started
    shutil.rmtree(run)
    print(json.dumps({"seconds": seconds, "rss_mib": peak_rss_mib()}))


def peak_rss_mib() -> float:
    """This process's own peak RSS: VmHWM of its memory map. Not ru_maxrss, which on Linux
    also counts the parent's map that a vfork'd child exec'd from (a big benchmark process
    would show its own size in every worker)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(
    server: SeaweedServer, folder: Path, size_mib: int, rounds: int
) -> dict[str, list[dict[str, float]]]:
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
    spec = {
        "data_dir": str(server.data_dir),
        "port": server.port,
        "key": server.access_key_id,
        "secret": server.secret_access_key,
        "folder": str(folder / "runs"),
        "changed": str(changed),
    }
    results: dict[str, list[dict[str, float]]] = {}
    for round_ in range(rounds):
        shift = round_ % len(OPERATIONS)
        for operation in OPERATIONS[shift:] + OPERATIONS[:shift]:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    operation,
                    json.dumps({**spec, "round": round_}),
                ],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": _pythonpath()},
            ).stdout
            results.setdefault(operation, []).append(json.loads(out.strip().splitlines()[-1]))
    for path in (source, changed):
        path.unlink()
    return results


def _pythonpath() -> str:
    root = str(Path(__file__).resolve().parent.parent)
    return os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with seaweed() as (server, folder):
        create_bucket(server, folder)
        results = measure(server, folder, args.size_mib, args.rounds)

    def median(operation: str, field: str) -> float:
        return statistics.median(sample[field] for sample in results[operation])

    size = args.size_mib
    rows = []
    for ours, theirs, label in (
        ("store-get", "boto3-download", f"get_file_path of a {size} MiB object"),
        ("store-sync", "boto3-upload", f"sync-back of a changed {size} MiB file"),
    ):
        ours_s, theirs_s = median(ours, "seconds"), median(theirs, "seconds")
        rows.append(
            [
                label,
                f"{ours_s:.2f} s ({size / ours_s:.0f} MiB/s)",
                f"{max(s['rss_mib'] for s in results[ours]):.0f} MiB",
                f"boto3 {'download_file' if 'get' in ours else 'upload_file'}",
                f"{theirs_s:.2f} s ({size / theirs_s:.0f} MiB/s)",
                f"{max(s['rss_mib'] for s in results[theirs]):.0f} MiB",
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
