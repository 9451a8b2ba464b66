"""Safe updates across processes and nodes (issue 19): 8 processes on 2 nodes, 200
increments each of one JSON counter, started together, add exactly 1600."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore
from tests.conftest import SettingsFactory
from tests.support.counter_worker import reaped, spawn_counter

PROCESSES, INCREMENTS = 8, 200


@pytest.mark.seaweedfs
def test_eight_processes_on_two_nodes_add_exactly_once(
    seaweed_settings: SettingsFactory, tmp_path: Path
) -> None:
    """Four processes on a write-through node and four on a write-behind one (updates are
    written through in either mode) increment one counter 200 times each behind a common
    start: every update returns a value no other returned, and the bucket holds 1600."""
    nodes = [
        seaweed_settings(cache_dir=tmp_path / "through", persistence_interval_seconds=0),
        seaweed_settings(cache_dir=tmp_path / "behind", persistence_interval_seconds=3600),
    ]
    spawned = [
        spawn_counter(nodes[index % 2], "shared/counter", INCREMENTS, attempts=1000)
        for index in range(PROCESSES)
    ]
    with reaped(spawned) as workers:
        for worker in workers:  # each has opened its store: start them all at once
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()  # communicate() closes it
        reports = []
        for worker in workers:
            out, _ = worker.communicate(timeout=600)
            assert worker.returncode == 0
            reports.append(json.loads(out.strip().splitlines()[-1]))
    conflicts = [report["applied"] - INCREMENTS for report in reports]
    assert sum(conflicts) > 0  # the processes did contend: the test proves something
    returned = sorted(value for report in reports for value in report["values"])
    # Each successful round was one conditional write over the value it was computed from.
    assert returned == list(range(1, PROCESSES * INCREMENTS + 1)), conflicts
    assert all(report["values"] == sorted(report["values"]) for report in reports)
    with ObjectStore(nodes[0].model_copy(update={"cache_dir": tmp_path / "check"})) as check:
        assert check.read_json("shared/counter") == PROCESSES * INCREMENTS, conflicts
    print(f"conflicts per process: {conflicts}")
