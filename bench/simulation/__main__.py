"""`python -m bench.simulation`: the organization simulation at several sizes, one table.

    python -m bench.simulation [--nodes 10,100,1000] [--processes 4] [--seconds 60]
                               [--dead-share 0.01] [--grace 109] [--timeout 600]

Each size runs in virtual time (bench/simulation/org.py); a size that does not finish
within `--timeout` real seconds shows its figures so far ("virtual s" short of
`--seconds`): what makes it slow is the ledger's work per save, every update of it
parsing and writing the whole ledger, and updates that lose race after race.
"""

from __future__ import annotations

import argparse
import math
import platform
import time

from .org import Outcome, Plan, simulate


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.simulation")
    parser.add_argument("--nodes", default="10,30,100", help="sizes, comma-separated")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--dead-share", type=float, default=0.01)
    parser.add_argument("--grace", type=float, default=109.0)
    parser.add_argument("--latency", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--leases",
        default="node",
        help="comma-separated: node (a node's processes share one lease), process (one each)",
    )
    parser.add_argument("--max-size", type=int, default=2048, help="saves are 1..N bytes")
    args = parser.parse_args()
    print(
        f"# organization simulation, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.python_version()}; {args.processes} processes per node, one save a second "
        f"each for {args.seconds:.0f} virtual s, {args.latency * 1000:.0f} ms each way per "
        f"request, {args.dead_share:.0%} of nodes killed at 20 s (grace {args.grace:.0f} s)\n"
    )
    rows: list[dict[str, object]] = []
    sizes = [int(n) for n in args.nodes.split(",")]
    for nodes, leases in ((n, kind) for n in sizes for kind in args.leases.split(",")):
        plan = Plan(
            nodes=nodes,
            processes=args.processes,
            seconds=args.seconds,
            seed=args.seed,
            latency=args.latency,
            dead=max(1, math.ceil(nodes * args.dead_share)) if args.dead_share else 0,
            grace=args.grace,
            shared=leases == "node",
            max_size=args.max_size,
        )
        rows.append(simulate(plan, timeout=args.timeout).row())
        print_table(rows[-1:], header=len(rows) == 1)


def print_table(rows: list[dict[str, object]], header: bool) -> None:
    columns = list(Outcome.columns())
    if header:
        print("| " + " | ".join(columns) + " |")
        print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(_cell(row.get(column)) for column in columns) + " |", flush=True)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3g}" if value < 100 else f"{value:.0f}"
    return str(value)


if __name__ == "__main__":
    main()
