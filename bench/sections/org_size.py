"""Organization size: a fresh node's saves in organizations of 10, 2,000 and 100,000
objects that another tool wrote (quota on, limits never reached).

Each organization is filled once with raw obstore puts (64 at once: the bulk path of a
tool that is not this store). Then, in rounds, sizes in rotated order, a fresh process
(this module run with `--worker`, its own cache_dir) opens a store and saves 50 new keys
of 1 KiB, timing each save and counting its requests by S3 operation; the same process
then times 50 boto3 put_object of new keys into the same organization (the server's own
cost at that size). Two cases per size:

- "no ledger": the organization has no usage ledger (only another tool ever wrote there,
  or the ledger was deleted), so the first save recounts usage from a listing
  (docs/quotas.md: a missing ledger is rebuilt from a listing);
- "ledger kept": the ledger the previous store left is there (the other tool's objects
  are not in it until a reconcile): no listing.

The keys a round's process saved are deleted with raw requests after it, so every round
sees the organization at its size. Rows: the mean of the 50 saves, the first save and saves
2-50, each against the same figure in the 10-object organization.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import obstore

from bench.harness import BIG, Bench
from bench.measure import FULL, KiB, Row, human
from bench.server import (
    BUCKET,
    process_env,
    raw_client,
    server_from,
    server_spec,
    settings_for,
    worker_command,
)
from objectstore_s3 import ObjectStore

WORKER = "bench.sections.org_size"  # this module, run with -m in each fresh process
SAVES = 50
SIZES = (10, 2_000, 100_000)
QUICK_SIZES = (10, 2_000, 20_000)
CASES = ("no ledger", "ledger kept")
LIMIT = 1.1


def run(b: Bench) -> list[Row]:
    sizes = SIZES if b.scale.listed >= FULL.listed else QUICK_SIZES
    rounds = max(2, min(b.scale.rounds, 5))
    setup = {size: fill(b, size) for size in sizes}
    env = process_env(b.server, b.folder)
    results: dict[tuple[int, str], list[dict[str, Any]]] = collections.defaultdict(list)
    for round_ in range(rounds):
        shift = round_ % len(sizes)
        for size in sizes[shift:] + sizes[:shift]:  # rotated order
            for case in CASES:
                if case == "no ledger":
                    b.boto.delete_object(Bucket=BUCKET, Key=f".objectstore/{org(size)}/usage.json")
                result = fresh_node(b, env, size, f"r{round_}-{case.split()[0]}")
                results[size, case].append(result)
                remove(b, org(size), result["keys"])
    return org_rows(sizes, results, setup, rounds)


def org(size: int) -> str:
    return f"org-size-{size}"


def fill(b: Bench, size: int) -> float:
    """Write `size` objects of 100 bytes under the organization with raw obstore puts,
    64 at once; the seconds it took."""

    async def put_all() -> None:
        gate = asyncio.Semaphore(64)

        async def put(index: int) -> None:
            async with gate:
                await obstore.put_async(b.obs, f"{org(size)}/tool/{index:06d}", b"x" * 100)

        await asyncio.gather(*(put(index) for index in range(size)))

    started = time.perf_counter()
    asyncio.run(put_all())
    seconds = time.perf_counter() - started
    print(f"(org_size: {size:,} objects written in {seconds:.1f} s)", file=sys.stderr, flush=True)
    return seconds


def fresh_node(b: Bench, env: dict[str, str], size: int, tag: str) -> dict[str, Any]:
    """One fresh process saving into the organization of `size` objects; its report."""
    folder = b.folder / "org-size" / f"{size}-{tag}"
    folder.mkdir(parents=True)
    spec = {**server_spec(b.server), "org": org(size), "folder": str(folder), "tag": tag}
    done = subprocess.run(
        worker_command(WORKER, "--worker", json.dumps(spec)),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker failed: {done.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def remove(b: Bench, organization: str, keys: list[str]) -> None:
    """Delete what a fresh node (and its boto3 baseline) wrote: raw requests, as another tool."""
    for start in range(0, len(keys), 1000):
        chunk = [{"Key": f"{organization}/{key}"} for key in keys[start : start + 1000]]
        b.boto.delete_objects(Bucket=BUCKET, Delete={"Objects": chunk, "Quiet": True})


# -- the rows -----------------------------------------------------------------------------------


class Figures:
    """One (size, case)'s figures over the rounds: medians of each round's times, and the
    requests per save summed over the rounds."""

    def __init__(self, runs: list[dict[str, Any]]) -> None:
        self.mean = statistics.median(statistics.fmean(run["durations"]) for run in runs)
        self.first = statistics.median(run["durations"][0] for run in runs)
        self.rest = statistics.median(statistics.fmean(run["durations"][1:]) for run in runs)
        self.raw = statistics.median(statistics.fmean(run["raw"]) for run in runs)
        first: collections.Counter[str] = collections.Counter()
        rest: collections.Counter[str] = collections.Counter()
        for run in runs:
            first.update(run["requests"][0])
            for counts in run["requests"][1:]:
                rest.update(counts)
        self.first_requests = {op: count / len(runs) for op, count in first.items()}
        self.rest_requests = {op: count / (len(runs) * (SAVES - 1)) for op, count in rest.items()}


def requests(counts: dict[str, float]) -> str:
    """'21 requests: 6 PutObject, 2 ListObjectsV2, ...' (most first; means over rounds)."""
    total = sum(counts.values())
    parts = [f"{count:.3g} {op}" for op, count in sorted(counts.items(), key=lambda kv: -kv[1])]
    return f"{total:.3g} request{'' if total == 1 else 's'}: " + ", ".join(parts)


def org_rows(
    sizes: tuple[int, ...],
    results: dict[tuple[int, str], list[dict[str, Any]]],
    setup: dict[int, float],
    rounds: int,
) -> list[Row]:
    rows: list[Row] = []
    for case in CASES:
        base = Figures(results[sizes[0], case])
        for size in sizes:
            figures = Figures(results[size, case])
            rows += case_rows(size, case, figures, None if size == sizes[0] else base)
        rows[-3].notes += f"; {rounds} rounds, median"
    filled = ", ".join(f"{size:,} in {setup[size]:.1f} s" for size in sizes)
    rows[0].notes += f"; organizations filled by raw obstore puts (64 at once): {filled}"
    return rows


def case_rows(size: int, case: str, f: Figures, base: Figures | None) -> list[Row]:
    """The mean, first-save and saves-2-to-50 rows of one organization size and case,
    against the smallest organization's (`base`; None: these are that reference)."""
    what = f"org size: {size:,} objects by another tool, {case}"
    raw = f"boto3 put_object in the same process: mean {human(f.raw)}"
    if base is not None:
        raw += f" ({f.raw / base.raw:.2f}x of the reference's)"
    return [
        ratio_row(
            f"{what}: mean of {SAVES} saves, fresh node",
            f.mean,
            None if base is None else base.mean,
            raw,
        ),
        ratio_row(
            f"{what}: first save",
            f.first,
            None if base is None else base.first,
            requests(f.first_requests),
        ),
        ratio_row(
            f"{what}: saves 2-{SAVES}",
            f.rest,
            None if base is None else base.rest,
            f"per save: {requests(f.rest_requests)}; {f.rest / f.raw:.2f}x boto3 put_object",
        ),
    ]


def ratio_row(name: str, ours: float, base: float | None, notes: str) -> Row:
    """A row against the same figure in the smallest organization (None: the reference)."""
    if base is None:
        return Row(name, human(ours), "(reference)", notes=notes)
    ratio = ours / base
    return Row(
        name,
        human(ours),
        "the same, org of 10",
        human(base),
        f"{ratio:.2f}x",
        f"≤ {LIMIT:g}x",
        "yes" if ratio <= LIMIT else "**no**",
        notes=notes,
    )


# -- the worker: one fresh node ------------------------------------------------------------------


def worker(spec: dict[str, Any]) -> None:
    """A fresh process: open a store on a new cache_dir, save SAVES new keys of 1 KiB
    (each timed, its requests counted by operation), close it, then time SAVES boto3
    put_object of new keys in the same organization; report as JSON."""
    folder = Path(spec["folder"])
    store = ObjectStore(
        settings_for(
            server_from(spec),
            folder,
            organization_id=spec["org"],
            cache_dir=folder / "cache",
            **BIG,
        )
    )
    counts: collections.Counter[str] = collections.Counter()
    store._connection().on_request(  # type: ignore[attr-defined]
        lambda operation, key: counts.update([operation])
    )
    payload = os.urandom(KiB)
    keys = [f"node-{spec['tag']}/{index:04d}" for index in range(SAVES)]
    durations, per_save = [], []
    for key in keys:
        counts.clear()
        started = time.perf_counter()
        store.save(key, payload)
        durations.append(time.perf_counter() - started)
        per_save.append(dict(counts))
    store.close()
    raw_keys = [f"raw-{spec['tag']}/{index:04d}" for index in range(SAVES)]
    client = raw_client(server_from(spec))
    raw = []
    for key in raw_keys:
        started = time.perf_counter()
        client.put_object(Bucket=BUCKET, Key=f"{spec['org']}/{key}", Body=payload)
        raw.append(time.perf_counter() - started)
    report = {"durations": durations, "requests": per_save, "raw": raw, "keys": keys + raw_keys}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(json.loads(sys.argv[2]))
