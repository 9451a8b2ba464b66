"""A separate process using the store, driven by tests (settings as JSON on argv).

python -m tests.support.worker SETTINGS_JSON save-and-wait PREFIX COUNT
    save COUNT keys PREFIX/i in write-behind mode, print "saved", then block
python -m tests.support.worker SETTINGS_JSON save-and-close PREFIX COUNT
    save COUNT keys PREFIX/i, then close (flushes) and exit 0
python -m tests.support.worker SETTINGS_JSON save-count PREFIX COUNT [SIZE]
    save COUNT values of SIZE bytes, print how many were accepted
python -m tests.support.worker SETTINGS_JSON get-file KEY 0
    print the SHA-256 of the key's local file
python -m tests.support.worker SETTINGS_JSON torture SEED OPERATIONS
    OPERATIONS random saves, overwrites and deletes of shared hot keys and own keys
python -m tests.support.worker SETTINGS_JSON interrupted-saves PREFIX COUNT
    write-through saves, every other one getting SIGINT right after its PUT landed;
    print the counts (saved, interrupted, refused) as JSON
python -m tests.support.worker SETTINGS_JSON skewed-clock PREFIX COUNT SKEW
    with time.time() running SKEW seconds off, save COUNT keys over ~20 s, print accepted
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def settings_json(settings: object) -> str:
    """The settings as JSON for another process, secret included (never printed)."""
    values = settings.model_dump(mode="json")  # type: ignore[attr-defined]
    secret = getattr(settings, "secret_access_key", None)
    if secret is not None:
        values["secret_access_key"] = secret.get_secret_value()
    return json.dumps(values)


def spawn(settings: object, *args: str) -> subprocess.Popen[str]:
    """Start this worker in a new process with `settings`; stdout is piped as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.worker", settings_json(settings), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def torture(store: object, seed: int, operations: int) -> dict[str, int]:
    """Random work on three hot keys shared by every worker and a few keys of its own: a
    count of operations, not a duration, so a slow machine does the same work, slower."""
    from objectstore_s3 import KeyNotFoundError, ObjectStore, ObjectStoreError

    assert isinstance(store, ObjectStore)
    rng = random.Random(seed)
    counts = {"saved": 0, "refused": 0, "deleted": 0, "failed": 0}
    keys = [f"hot/{index}" for index in range(3)] + [f"own-{seed}/{index}" for index in range(4)]
    for _ in range(operations):
        key = rng.choice(keys)
        try:
            if rng.random() < 0.3:
                store.delete(key)
                counts["deleted"] += 1
            elif store.save_bytes(key, b"x" * rng.randint(1, 400)):
                counts["saved"] += 1
            else:
                counts["refused"] += 1
        except KeyNotFoundError:
            pass
        except ObjectStoreError:
            counts["failed"] += 1  # a fault the retries could not hide: reported, not lost
        time.sleep(rng.uniform(0, 0.02))
    return counts


def interrupted_saves(settings: object, prefix: str, count: int) -> int:
    """Saves of which every other one is interrupted by a real SIGINT after it landed."""
    from objectstore_s3 import ObjectStore, StorageLimitExceededError
    from tests.support.interrupting import Interrupting, Plan

    opener = ObjectStore(settings)  # type: ignore[arg-type]
    plan = Plan(["after", "pass"] * count, signal=True)
    store = ObjectStore(settings, backend=Interrupting(opener._connection(), plan))  # type: ignore[arg-type]
    counts = {"saved": 0, "interrupted": 0, "refused": 0}
    for index in range(count):
        try:
            counts["saved" if store.save(f"{prefix}/{index}", "v") else "refused"] += 1
        except KeyboardInterrupt:
            counts["interrupted"] += 1
        except StorageLimitExceededError:
            counts["refused"] += 1
    store.close()
    opener.close()
    print(json.dumps(counts), flush=True)
    return 0


def main() -> int:
    action = sys.argv[2]
    if action == "skewed-clock":
        skew = float(sys.argv[5])
        real = time.time
        time.time = lambda: real() + skew  # this machine's clock is off; the server's is not

    from objectstore_s3 import ObjectStore, ObjectStoreSettings

    settings = ObjectStoreSettings(**json.loads(sys.argv[1]))
    store = ObjectStore(settings)
    if action == "get-file":
        path = store.get_file_path(sys.argv[3])
        print(hashlib.sha256(Path(path).read_bytes()).hexdigest(), flush=True)
        store.close()
        return 0
    if action == "torture":
        counts = torture(store, int(sys.argv[3]), int(sys.argv[4]))
        store.close()
        print(json.dumps(counts), flush=True)
        return 0
    prefix, count = sys.argv[3], int(sys.argv[4])
    if action == "skewed-clock":
        saved = 0
        for index in range(count):
            saved += store.save(f"{prefix}/{index}", "v")
            time.sleep(20.0 / count)
        store.close()
        print(saved, flush=True)
        return 0
    if action == "interrupted-saves":
        return interrupted_saves(settings, prefix, count)
    if action == "save-count":
        size = int(sys.argv[5]) if len(sys.argv) > 5 else 10
        saved = sum(store.save_bytes(f"{prefix}/{index}", b"x" * size) for index in range(count))
        store.close()
        print(saved, flush=True)
        return 0
    for index in range(count):
        assert store.save(f"{prefix}/{index}", f"value-{index}")
    if action == "save-and-wait":
        print("saved", flush=True)
        time.sleep(3600)  # killed by the test
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())


def kill_after(process: subprocess.Popen[str], line: str, wait: float = 0.0) -> None:
    """Read `line` from the process's stdout, let `wait` seconds pass, then SIGKILL it and
    reap it (killed even when the line does not come)."""
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == line
        time.sleep(wait)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
