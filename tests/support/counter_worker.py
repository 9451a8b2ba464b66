"""A separate process incrementing a shared JSON counter with `update_json`, for the
multi-process test of safe updates (issue 19).

python -m tests.support.counter_worker SETTINGS_JSON KEY COUNT ATTEMPTS
    open the store, print "ready", wait for a line on stdin (the start barrier), then
    increment KEY COUNT times; print as JSON the values each update returned and how
    many times the function was applied (one more than each update's conflicts)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.worker import ROOT, settings_json


def spawn_counter(settings: object, key: str, count: int, attempts: int) -> subprocess.Popen[str]:
    """Start a counter worker with `settings`; stdin and stdout are piped as text."""
    args = [key, str(count), str(attempts)]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.counter_worker", settings_json(settings), *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


@contextmanager
def reaped(workers: list[subprocess.Popen[str]]) -> Iterator[list[subprocess.Popen[str]]]:
    """The workers, each killed and reaped if it still runs when the block ends (one
    failed, or a test's assertion did)."""
    try:
        yield workers
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait(timeout=30)


def main() -> int:
    from objectstore_s3 import ObjectStore, ObjectStoreSettings

    key, count, attempts = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    applied = 0

    def increment(current: int | None) -> int:
        nonlocal applied
        applied += 1
        return (current or 0) + 1

    with ObjectStore(ObjectStoreSettings(**json.loads(sys.argv[1]))) as store:
        print("ready", flush=True)
        sys.stdin.readline()  # every worker starts when the test says so
        values = [store.update_json(key, increment, attempts=attempts) for _ in range(count)]
    print(json.dumps({"values": values, "applied": applied}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
