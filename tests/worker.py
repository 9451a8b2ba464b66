"""A separate process using the store, driven by tests (settings as JSON on argv).

python -m tests.worker SETTINGS_JSON save-and-wait PREFIX COUNT
    save COUNT keys PREFIX/i in write-behind mode, print "saved", then block
python -m tests.worker SETTINGS_JSON save-and-close PREFIX COUNT
    save COUNT keys PREFIX/i, then close (flushes) and exit 0
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from objectstore_s3 import ObjectStore, ObjectStoreSettings

ROOT = Path(__file__).resolve().parents[1]


def settings_json(settings: ObjectStoreSettings) -> str:
    """The settings as JSON for another process, secret included (never printed)."""
    values = settings.model_dump(mode="json")
    if settings.secret_access_key is not None:
        values["secret_access_key"] = settings.secret_access_key.get_secret_value()
    return json.dumps(values)


def spawn(settings: ObjectStoreSettings, *args: str) -> subprocess.Popen[str]:
    """Start this worker in a new process with `settings`; stdout is piped as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.worker", settings_json(settings), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def main() -> int:
    settings = ObjectStoreSettings(**json.loads(sys.argv[1]))
    action, prefix, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = ObjectStore(settings)
    if action == "get-file":
        path = store.get_file_path(prefix)
        print(hashlib.sha256(Path(path).read_bytes()).hexdigest(), flush=True)
        store.close()
        return 0
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
