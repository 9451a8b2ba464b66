"""Row 10, ledger contention: 16 processes saving new keys into one organization, quota on.

Each process is this module run with `--worker`: it opens its store, says "ready", waits
for "go" on stdin, saves, and prints its save durations and its ledger requests as JSON.
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import Bench
from bench.measure import KiB, Row, human
from bench.server import Team, process_env, server_from, server_spec, settings_for
from objectstore_s3 import ObjectStore

WORKER = "bench.sections.ledger_contention"  # this module, run with -m in each process
PROCESSES = 16


class Tally:
    """What the rounds add up: durations' medians and tails, first saves, request counts."""

    def __init__(self) -> None:
        self.p50s: list[float] = []
        self.p99s: list[float] = []
        self.ratios: list[float] = []
        self.firsts: list[float] = []
        self.warm_ratios: list[float] = []
        self.totals: collections.Counter[str] = collections.Counter()
        self.saves = 0

    def add_round(self, results: list[dict[str, Any]]) -> None:
        durations: list[float] = []
        warm: list[float] = []  # each process's saves after its first
        for result in results:
            durations += result["durations"]
            self.firsts.append(result["durations"][0])
            warm += result["durations"][1:]
            self.totals.update(result["counts"])
        self.saves += len(durations)
        p50 = statistics.median(durations)
        p99 = statistics.quantiles(durations, n=100)[98]
        self.p50s.append(p50)
        self.p99s.append(p99)
        self.ratios.append(p99 / p50)
        self.warm_ratios.append(statistics.quantiles(warm, n=100)[98] / statistics.median(warm))


def run(b: Bench) -> list[Row]:
    spec = {**server_spec(b.server), "saves": b.scale.ledger_saves}
    env = process_env(b.server, b.folder)
    tally = Tally()
    for round_ in range(b.scale.ledger_rounds):
        tally.add_round(contend(b, spec, env, round_))
    return ledger_rows(b, tally)


def contend(
    b: Bench, spec: dict[str, Any], env: dict[str, str], round_: int
) -> list[dict[str, Any]]:
    """One round: the processes started and all ready, then told to go at once; their results."""
    org = f"contended-{round_}"
    specs = []
    for index in range(PROCESSES):
        folder = b.folder / "ledger" / f"{round_}-{index}"
        folder.mkdir(parents=True)
        specs.append({**spec, "org": org, "name": f"p{index}", "folder": str(folder)})
    with Team(WORKER, specs, env) as team:
        return team.command("go")


def ledger_rows(b: Bench, tally: Tally) -> list[Row]:
    ratio = statistics.median(tally.ratios)
    warm_ratio = statistics.median(tally.warm_ratios)
    totals, saves = tally.totals, tally.saves
    gets, puts, conflicts = (
        totals["ledger GetObject"],
        totals["ledger PutObject"],
        totals["ledger 412"],
    )
    return [
        Row(
            f"10. ledger contention: 16 processes x {b.scale.ledger_saves} new-key saves, one org",
            f"p50 {human(statistics.median(tally.p50s))}, "
            f"p99 {human(statistics.median(tally.p99s))}",
            "its own median",
            "",
            f"p99/p50 {ratio:.2f}x",
            "p99 ≤ 3x median",
            "yes" if ratio <= 3 else "**no**",
            notes=f"per save: {puts / saves:.3f} ledger PUTs, {gets / saves:.3f} ledger GETs, "
            f"{conflicts / saves:.3f} retries (412 on the ledger's PUT); first save of a "
            f"process: median {human(statistics.median(tally.firsts))}; "
            f"{b.scale.ledger_rounds} round(s)",
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


# -- the worker: one contending process ------------------------------------------------------


def worker(spec: dict[str, Any]) -> None:
    """One contending process: save `saves` new keys when told to go; report as JSON."""
    folder = Path(spec["folder"])
    store = ObjectStore(
        settings_for(
            server_from(spec), folder, organization_id=spec["org"], cache_dir=folder / "cache"
        )
    )
    counts = count_ledger_requests(store)
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


def count_ledger_requests(
    store: ObjectStore, updates: list[int] | None = None
) -> collections.Counter[str]:
    """A counter the store's requests on its ledger (usage.json) and the 412s update;
    `updates` gets, per ledger update that landed, the 412s it lost before it."""
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

    lost = [0]  # the current update's lost races

    def after_put(http_response: Any = None, context: Any = None, **_: Any) -> None:
        if http_response is None or not context:
            return
        ledger = bool(context.get("bench_ledger"))
        if http_response.status_code == 412:
            counts["ledger 412" if ledger else "other 412"] += 1
            lost[0] += ledger
        elif ledger and http_response.status_code < 300 and updates is not None:
            updates.append(lost[0])
            lost[0] = 0

    events = backend.client.meta.events  # type: ignore[attr-defined]
    events.register("before-parameter-build.s3.PutObject", before_put)
    events.register("after-call.s3.PutObject", after_put)
    return counts


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(json.loads(sys.argv[2]))
