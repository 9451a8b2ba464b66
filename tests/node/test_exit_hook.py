"""At interpreter exit (issue 22 point 10): a store left open whose pending work cannot be
uploaded says so (the journal keeps the work for the next store on the node); a store
closed by its owner says nothing at exit, whatever became of its server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from pathlib import Path

from objectstore_s3 import ObjectStore, ObjectStoreSettings, StorageUnavailableError
from objectstore_s3.transport.memory import MemoryBackend

folder = Path(sys.argv[1])
backend = MemoryBackend()
settings = ObjectStoreSettings(
    cache_dir=folder / "cache", local_root=folder / "local", persistence_interval_seconds=3600
)
store = ObjectStore(settings, backend=backend)
store.save("warm", "w")
store.flush()  # the quota lease, while the server answers
store.save("pending", "value")
if sys.argv[2] == "close":
    store.close()


def down(operation, key, stage):
    raise StorageUnavailableError("the server went away")


backend.inject(down)
"""


def _exit_with_store(tmp_path: Path, how: str) -> str:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), how],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_a_store_left_open_that_cannot_flush_at_exit_says_so(tmp_path: Path) -> None:
    said = _exit_with_store(tmp_path, "leave open")
    assert "Object Store could not flush at exit; the journal keeps it" in said
    assert "the server went away" in said


def test_a_closed_store_says_nothing_at_exit(tmp_path: Path) -> None:
    assert _exit_with_store(tmp_path, "close") == ""
