"""A separate process using the store, driven by tests (settings as JSON on argv).

python -m tests.worker SETTINGS_JSON save-and-wait PREFIX COUNT
    save COUNT keys PREFIX/i in write-behind mode, print "saved", then block
python -m tests.worker SETTINGS_JSON save-and-close PREFIX COUNT
    save COUNT keys PREFIX/i, then close (flushes) and exit 0
"""

from __future__ import annotations

import json
import sys
import time

from objectstore_s3 import ObjectStore, ObjectStoreSettings


def main() -> int:
    settings = ObjectStoreSettings(**json.loads(sys.argv[1]))
    action, prefix, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = ObjectStore(settings)
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
