"""Org: one organization's processes with quota on and off below its limits, and near one.

Below the limit: 64 processes (16 simulated nodes: a cache_dir each, shared by 4
processes), each this module run with `--worker` and its own settings, with two stores:
quota_enforcement="exact" in one organization and "off" in another, limits far away. In
rounds, modes in rotated order, every process is told at once to save `saves` new 1 KiB
keys into one mode's organization; each times its own save loop (after that start
barrier: interpreter start-up is not in it), and the organization's throughput is all
saves over the first start to the last end. Before the rounds, all at once, each process
makes one untimed save in each store: its probe of the server's conditional writes (once
per process and bucket, paid by whichever store writes first) and the exact store's
lease, whose ledger requests count. Processes and stores live across the rounds, so the
leases are renewed in them, as in long-running processes.

Near the limit: 16 processes save new keys into an organization a raw fill (and one
store's recount into the ledger) left at 95% of its file limit, each until refused; its
store is then closed (its lease given back). The limit is checked by listing the
organization at the end; the usage at the first refusal is the fill plus the saves that
had ended before it (one monotonic clock on this machine).

Ledger requests are the GETs and PUTs of the organization's usage.json and conflicts the
412s on its PUT, counted by a botocore event hook in each process (ledger_contention).
"""

from __future__ import annotations

import collections
import json
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import BIG, Bench, Requests
from bench.measure import FULL, KiB, Row, rotated
from bench.sections.ledger_contention import count_ledger_requests
from bench.server import BUCKET, Team, process_env, server_from, server_spec, settings_for
from objectstore_s3 import ObjectStore
from objectstore_s3.errors import StorageLimitExceededError

WORKER = "bench.sections.org"  # this module, run with -m in each process
MODES = ("exact", "off")
NEAR_START = 0.95  # of the file limit, filled before the near-limit processes start


@dataclass(frozen=True)
class OrgScale:
    processes: int  # below the limit
    per_node: int  # processes sharing a cache_dir
    saves: int  # per process per round and mode
    rounds: int
    near_processes: int
    near_limit: int  # the organization's file limit near the limit


FULL_ORG = OrgScale(64, 4, 100, 4, 16, 10_000)
QUICK_ORG = OrgScale(8, 4, 20, 2, 8, 1_000)


def run(b: Bench) -> list[Row]:
    scale = FULL_ORG if b.scale.ledger_saves >= FULL.ledger_saves else QUICK_ORG
    env = process_env(b.server, b.folder)
    return below_limit(b, scale, env) + near_limit(b, scale, env)


# -- below the limit ------------------------------------------------------------------------


def below_limit(b: Bench, scale: OrgScale, env: dict[str, str]) -> list[Row]:
    spec = {**server_spec(b.server), "job": "below"}
    specs = []
    for index in range(scale.processes):
        node = b.folder / "org" / f"node-{index // scale.per_node}"
        specs.append({**spec, "name": f"p{index}", "folder": str(node)})
    throughput: dict[str, list[float]] = {mode: [] for mode in MODES}
    answers: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    started = time.perf_counter()
    with Team(WORKER, specs, env) as team:
        print(
            f"(org: {scale.processes} processes ready in {time.perf_counter() - started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        warm = team.command("warm")
        for round_ in range(scale.rounds):
            for mode in rotated(list(MODES), round_):
                results = team.command(f"{mode} {round_} {scale.saves}")
                span = max(r["end"] for r in results) - min(r["start"] for r in results)
                throughput[mode].append(sum(r["saves"] for r in results) / span)
                answers[mode] += results
    return below_rows(scale, throughput, warm, answers)


def below_rows(
    scale: OrgScale,
    throughput: dict[str, list[float]],
    warm: list[dict[str, Any]],
    answers: dict[str, list[dict[str, Any]]],
) -> list[Row]:
    on, off = statistics.median(throughput["exact"]), statistics.median(throughput["off"])
    ratio = on / off
    rounds = ", ".join(
        f"{a:.0f}/{b:.0f}" for a, b in zip(throughput["exact"], throughput["off"], strict=True)
    )
    what = (
        f"org: {scale.processes} processes ({scale.processes // scale.per_node} nodes) x "
        f"{scale.saves} new-key saves a round, below the limit"
    )
    timed, off_timed = Figures(answers["exact"]), Figures(answers["off"])
    started = Figures(warm)
    ledger = Figures(warm + answers["exact"])
    sent = (
        f"requests per save {timed.all / timed.saves:.3f} vs {off_timed.all / off_timed.saves:.3f}"
    )
    return [
        Row(
            f"{what}: throughput, quota exact",
            f"{on:.0f} saves/s",
            "quota_enforcement=off, same processes",
            f"{off:.0f} saves/s",
            f"{ratio:.2f}x",
            "≥ 0.9x throughput",
            "yes" if ratio >= 0.9 else "**no**",
            notes=f"exact/off saves/s by round: {rounds}; {scale.rounds} rounds, median; "
            f"{sent}; each process's first save (its lease, the server's probe) untimed",
        ),
        Row(
            f"{what}: ledger requests per save, quota exact",
            f"{ledger.per_save:.4f}",
            "(absolute)",
            "",
            "",
            "≤ 0.05",
            "yes" if ledger.per_save <= 0.05 else "**no**",
            notes=f"leases taken included: {ledger.describe()}; of which the first saves, all "
            f"processes at once: {started.describe()}; the timed rounds alone: "
            f"{timed.per_save:.4f} per save; quota off: {off_timed.requests} ledger requests",
        ),
    ]


class Figures:
    """The ledger figures of a set of worker answers: requests, saves, conflicts per update."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        counts: collections.Counter[str] = collections.Counter()
        self.updates: list[int] = []
        self.saves = 0
        for answer in answers:
            counts.update(answer["counts"])
            self.updates += answer["updates"]
            self.saves += answer["saves"]
        self.gets, self.puts = counts["ledger GetObject"], counts["ledger PutObject"]
        self.conflicts = counts["ledger 412"]
        self.requests = self.gets + self.puts
        self.all = counts["all"]  # every request, the ledger's included (below the limit)
        self.per_save = self.requests / max(self.saves, 1)

    def p99(self) -> int:
        if len(self.updates) < 2:
            return max(self.updates, default=0)
        return round(statistics.quantiles(self.updates, n=100, method="inclusive")[98])

    def describe(self) -> str:
        mean = statistics.fmean(self.updates) if self.updates else 0.0
        return (
            f"{self.gets} GETs + {self.puts} PUTs over {self.saves:,} saves; "
            f"{len(self.updates)} updates, 412s per update mean {mean:.2f}, "
            f"p99 {self.p99()}, most {max(self.updates, default=0)}"
        )


# -- near the limit ----------------------------------------------------------------------------


def near_limit(b: Bench, scale: OrgScale, env: dict[str, str]) -> list[Row]:
    org, limit = "org-near", scale.near_limit
    filled = round(limit * NEAR_START)
    started = time.perf_counter()
    b.put_raw([f"{org}/fill/{index:06d}" for index in range(filled)], b"x" * 100)
    settings = settings_for(
        b.server,
        b.folder,
        organization_id=org,
        cache_dir=b.folder / "org" / "near-fill",
        storage_file_count=limit,
        storage_limit_bytes=BIG["storage_limit_bytes"],
    )
    with ObjectStore(settings) as store:
        store.reconcile_usage()  # the ledger counts the fill: a running organization's
    print(
        f"(org: {filled:,} objects filled in {time.perf_counter() - started:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    spec = {**server_spec(b.server), "job": "near", "org": org, "limit": limit}
    specs = []
    for index in range(scale.near_processes):
        node = b.folder / "org" / f"near-{index // scale.per_node}"
        specs.append({**spec, "name": f"p{index}", "folder": str(node)})
    with Team(WORKER, specs, env) as team:
        results = team.command("near")
    listed = sum(
        page.get("KeyCount", 0)
        for page in b.boto.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=f"{org}/"
        )
    )
    return near_rows(scale, filled, listed, results)


def near_rows(
    scale: OrgScale, filled: int, listed: int, results: list[dict[str, Any]]
) -> list[Row]:
    limit = scale.near_limit
    ledger = Figures(results)
    first = min(results, key=lambda r: r["refused"])
    before = sum(1 for r in results for end in r["ends"] if end < first["refused"])
    at_refusal = (filled + before) / limit
    what = (
        f"org: {scale.near_processes} processes saving from {NEAR_START:.0%} of a "
        f"{limit:,}-file limit until refused"
    )
    passed = listed > limit
    return [
        Row(
            f"{what}: ledger requests per save",
            f"{ledger.per_save:.2f}",
            "(absolute)",
            "",
            "",
            "≤ 2",
            "yes" if ledger.per_save <= 2 else "**no**",
            notes=f"{ledger.describe()}; the processes' first leases and the "
            f"{len(results)} refused saves' requests included",
        ),
        Row(
            f"{what}: 412s per ledger update, p99",
            f"{ledger.p99()}",
            "(absolute)",
            "",
            "",
            "≤ 3 (a few)",
            "yes" if ledger.p99() <= 3 else "**no**",
            notes=f"{len(ledger.updates)} updates, {ledger.conflicts} 412s",
        ),
        Row(
            f"{what}: objects at the end",
            f"{listed:,} listed",
            "the limit",
            f"{limit:,}",
            f"{listed / limit:.2%}",
            "never passed",
            "**no**" if passed else "yes",
            notes=f"{filled:,} filled + {ledger.saves:,} saves; first refusal at "
            f"{at_refusal:.2%} of the limit ({filled + before:,} objects; the rest in "
            f"other processes' leases then), its message: {first['message']}",
        ),
    ]


# -- the worker ----------------------------------------------------------------------------------


def open_store(spec: dict[str, Any], org: str, mode: str, **limits: int) -> ObjectStore:
    """A store of the worker's node (its cache_dir shared with the node's other processes)."""
    node = Path(spec["folder"])
    values = {
        "organization_id": org,
        "cache_dir": node / f"cache-{mode}",
        "quota_enforcement": mode,
        "mode": "research",
        **limits,
    }
    return ObjectStore(settings_for(server_from(spec), node, **values))


def below_worker(spec: dict[str, Any]) -> None:
    """Two stores (quota exact, off), each in its organization; per command line
    "<mode> <round> <saves>", that many saves of new keys, reported as JSON."""
    stores = {mode: open_store(spec, f"org-{mode}", mode, **BIG) for mode in MODES}
    updates: dict[str, list[int]] = {mode: [] for mode in MODES}
    counts = {mode: count_ledger_requests(stores[mode], updates[mode]) for mode in MODES}
    requests = {mode: Requests(stores[mode]) for mode in MODES}
    payload = os.urandom(KiB)
    print("ready", flush=True)
    # "warm": one save in each store, untimed: the process's probe of the server's
    # conditional writes (once per bucket, by whichever store writes first) and the exact
    # store's lease. Then per line "<mode> <round> <saves>", the timed saves.
    sys.stdin.readline()
    for mode in MODES:
        stores[mode].save(f"{spec['name']}/warm", payload)
    warm = {"counts": dict(counts["exact"]), "updates": list(updates["exact"]), "saves": 1}
    print(json.dumps(warm), flush=True)
    for line in sys.stdin:
        mode, round_, saves = line.split()
        store, before, sent = stores[mode], dict(counts[mode]), requests[mode].total()
        updates[mode].clear()
        start = time.perf_counter()
        for index in range(int(saves)):
            store.save(f"{spec['name']}/{round_}/{index:05d}", payload)
        end = time.perf_counter()
        counts_now = {k: v - before.get(k, 0) for k, v in counts[mode].items()}
        counts_now["all"] = requests[mode].total() - sent
        report = {"start": start, "end": end, "saves": int(saves), "counts": counts_now}
        print(json.dumps({**report, "updates": list(updates[mode])}), flush=True)
    for store in stores.values():
        store.close()


def near_worker(spec: dict[str, Any]) -> None:
    """One store near its organization's file limit: on "near", new keys saved until
    the first refusal; the store closed (its lease given back), then a JSON report."""
    # mode "research": a refusal is raised (in "backtest" it is reported, save -> False).
    store = open_store(spec, spec["org"], "exact", storage_file_count=spec["limit"])
    updates: list[int] = []
    counts = count_ledger_requests(store, updates)
    payload = os.urandom(KiB)
    print("ready", flush=True)
    sys.stdin.readline()
    ends = []
    try:
        for index in range(spec["limit"]):
            store.save(f"{spec['name']}/{index:06d}", payload)
            ends.append(time.perf_counter())
        refused, message = time.perf_counter(), "(never refused)"
    except StorageLimitExceededError as exc:
        refused, message = time.perf_counter(), re.sub(r"'[^']*'", "KEY", str(exc))
    report = {"saves": len(ends), "counts": dict(counts), "updates": list(updates)}
    store.close()
    print(json.dumps({**report, "ends": ends, "refused": refused, "message": message}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        given = json.loads(sys.argv[2])
        if given["job"] == "below":
            below_worker(given)
        else:
            near_worker(given)
