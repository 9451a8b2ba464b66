"""The measuring and the table: scales, timing in rotated order, rows and their targets.

Ratios are objectstore time / baseline time (lower is better) unless the target says
"faster" or "throughput" (higher is better).
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

KiB = 1024
Action = Callable[[], object]


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


# -- timing -----------------------------------------------------------------------------------


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


def human(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def cpu_note(t: Medians, ours: str, base: str) -> str:
    """The client's own CPU per operation, ours vs the baseline's."""
    return f"client CPU/op {human(t.cpu[ours])} vs {human(t.cpu[base])}"


# -- the rows and their targets -----------------------------------------------------------------


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


def transport_rows(
    number: str, what: str, t: Medians, baselines: tuple[str, str], limits: tuple[float, float]
) -> list[Row]:
    """The pair of rows of one operation measured on both transports: row `number` for the
    boto3 transport against boto3 (minio beside it), row 11 for obstore against obstore.
    `t` has the labels "store boto3", "store obstore", "boto3", "obstore" and "minio"."""
    return [
        at_most(
            f"{number}. {what} (boto3 transport)",
            t["store boto3"],
            baselines[0],
            t["boto3"],
            limits[0],
            minio=t["minio"],
            notes=cpu_note(t, "store boto3", "boto3"),
        ),
        at_most(
            f"11. {what} (obstore transport)",
            t["store obstore"],
            baselines[1],
            t["obstore"],
            limits[1],
            notes=cpu_note(t, "store obstore", "obstore"),
        ),
    ]


# -- printing -----------------------------------------------------------------------------------


def print_rows(rows: list[Row]) -> None:
    """The benchmark's table: one markdown row per Row, `|` in a cell escaped."""
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


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    """A titled markdown table (the large-file benchmark run alone)."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
