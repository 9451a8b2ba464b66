"""The project's benchmark: objectstore-s3 against raw boto3, obstore and minio, one run.

    python -m bench [--quick] [--rounds N] [--only SECTION,...]

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
import signal
import sys
import time
import traceback
from collections.abc import Callable

import boto3
import obstore

from bench.harness import Bench
from bench.measure import FULL, QUICK, Row, Scale, print_rows
from bench.sections import (
    bulk_reads,
    cached_reads,
    console,
    fresh_processes,
    large_files,
    ledger_contention,
    listing,
    org,
    org_size,
    saves,
    threads,
    uncached_reads,
    write_behind,
)
from bench.server import BUCKET, seaweed

# The sections by their --only name, in the order a run measures them.
SECTIONS: dict[str, Callable[[Bench], list[Row]]] = {
    "saves": saves.run,
    "reads": uncached_reads.run,
    "keys": listing.run,
    "cached": cached_reads.run,
    "write-behind": write_behind.run,
    "threads": threads.run,
    "many": bulk_reads.run,
    "processes": fresh_processes.run,
    "files": large_files.run,
    "ledger": ledger_contention.run,
    "ui": console.run,
    "org_size": org_size.run,
    "org": org.run,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="few rounds, small counts")
    parser.add_argument("--rounds", type=int, help="rounds of the per-call rows")
    parser.add_argument("--only", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    return parser.parse_args()


def run_sections(chosen: list[str], scale: Scale) -> list[Row]:
    """Each chosen section in order on one server; a section that breaks is a row."""
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
    return rows


def main() -> None:
    # A terminated run still stops its server (the `finally` of server.seaweed).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args()
    scale = QUICK if args.quick else FULL
    if args.rounds:
        scale = Scale(**{**scale.__dict__, "rounds": args.rounds})
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    started = time.perf_counter()
    rows = run_sections(chosen, scale)
    print(
        f"\nobjectstore-s3 benchmark, SeaweedFS on loopback, {scale.rounds} rounds "
        f"({'quick' if args.quick else 'full'}), {time.perf_counter() - started:.0f} s, "
        f"boto3 {boto3.__version__}, obstore {obstore.__version__}\n"
    )
    print_rows(rows)


if __name__ == "__main__":
    main()
