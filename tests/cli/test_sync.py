"""`sync` (issue 22): only what differs goes, --delete, --dry-run, in parallel. A
QuantConnect user's `storage/` folder of a local LEAN run goes up and comes back down
identical, and a second sync transfers nothing. Subprocesses against SeaweedFS, and the
step runner in process."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from objectstore_s3.cli import actions
from objectstore_s3.server.seaweedfs import SeaweedServer
from tests.support.cli import Runner, organization_environment, runner

MiB = 1024 * 1024


@pytest.fixture
def cli(seaweed: SeaweedServer, tmp_path: Path) -> Runner:
    environment = organization_environment(seaweed, tmp_path)
    environment["OBJECTSTORE_MULTIPART_THRESHOLD_BYTES"] = str(5 * MiB)
    environment["OBJECTSTORE_MULTIPART_CHUNKSIZE_BYTES"] = str(5 * MiB)
    return runner(environment, cwd=tmp_path)


def lean_storage(root: Path) -> dict[str, bytes]:
    """What a local LEAN run leaves in `storage/`: JSON, CSV, a pickled model, and a
    file large enough to be uploaded in parts (its ETag is then no MD5)."""
    rng = random.Random(22)
    files = {
        "sma-values.json": b'{"2024-01-02": 471.2, "2024-01-03": 472.9}',
        "insights/2024-01-02.json": b'[{"symbol": "SPY", "direction": 1}]',
        "data/prices.csv": b"time,close\n2024-01-02,471.2\n",
        "models/forest.pkl": rng.randbytes(300_000),
        "models/weights.bin": rng.randbytes(6 * MiB),
    }
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return files


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def sync(cli: Runner, *args: str) -> dict[str, Any]:
    result = cli("sync", *args, "--json")
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def targets(report: dict[str, Any]) -> list[str]:
    return sorted(action["target"] for action in report["actions"])


@pytest.mark.seaweedfs
def test_a_lean_storage_folder_goes_up_and_comes_back_identical(
    cli: Runner, tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    files = lean_storage(storage)
    up = sync(cli, str(storage), "os://123/storage/")
    assert targets(up) == sorted(f"os://123/storage/{name}" for name in files)
    listed = json.loads(cli("ls", "123/storage/models/", "--json").stdout)
    assert "-" in listed[-1]["etag"]  # weights.bin went in parts: the time decides for it
    again = sync(cli, str(storage), "os://123/storage/")
    assert (again["actions"], again["unchanged"]) == ([], len(files))
    back = tmp_path / "elsewhere" / "storage"
    down = sync(cli, "os://123/storage/", str(back))
    assert len(down["actions"]) == len(files)
    assert tree(back) == files
    assert sync(cli, "os://123/storage/", str(back))["actions"] == []
    assert sync(cli, str(back), "os://123/storage/")["actions"] == []  # times kept
    text = cli("sync", str(storage), "os://123/storage/")
    assert (text.returncode, text.stdout) == (0, b"")


@pytest.mark.seaweedfs
def test_only_what_differs_goes_and_delete_removes_what_the_source_lacks(
    cli: Runner, tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    lean_storage(storage)
    sync(cli, str(storage), "os://123/storage/")
    (storage / "sma-values.json").write_bytes(b'{"2024-01-02": 999.9, "2024-01-03": 472.9}')
    (storage / "data" / "prices.csv").unlink()
    changed = sync(cli, str(storage), "os://123/storage/")
    assert targets(changed) == ["os://123/storage/sma-values.json"]  # same size, other MD5
    kept = json.loads(cli("ls", "123/storage/data/", "--json").stdout)
    assert [item["key"] for item in kept] == ["123/storage/data/prices.csv"]  # no --delete
    preview = cli("sync", str(storage), "os://123/storage/", "--delete", "--dry-run")
    assert preview.stdout == b"(dry run) delete: os://123/storage/data/prices.csv\n"
    assert json.loads(cli("ls", "123/storage/data/", "--json").stdout) == kept
    deleted = sync(cli, str(storage), "os://123/storage/", "--delete")
    assert deleted["actions"] == [
        {"action": "delete", "source": None, "target": "os://123/storage/data/prices.csv"}
    ]
    down = tmp_path / "down"
    sync(cli, "os://123/storage/", str(down))
    (down / "stray.txt").write_text("not in the store")
    removed = sync(cli, "os://123/storage/", str(down), "--delete")
    assert targets(removed) == [str(down / "stray.txt")]
    assert tree(down) == tree(storage)


@pytest.mark.seaweedfs
def test_sync_needs_a_folder_and_a_prefix(cli: Runner, tmp_path: Path) -> None:
    for args in (["a/", "b/"], ["os://a/", "os://b/"]):
        result = cli("sync", *args)
        assert result.returncode == 2
        assert b"sync a folder and a prefix" in result.stderr
    missing = cli("sync", "missing/", "os://p/")
    assert (missing.returncode, missing.stderr) == (1, b"error: no such folder: missing/\n")


def test_steps_run_in_parallel_bounded_by_the_workers() -> None:
    """Two steps meet at a barrier (so they ran at once); never more than two at once."""
    lock, both = threading.Lock(), threading.Barrier(2, timeout=30)
    active, most = [0], [0]

    def call(progress: actions.Progress | None) -> None:
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        both.wait()
        with lock:
            active[0] -= 1

    steps = [actions.Step("upload", f"f{n}", f"os://k{n}", 1, call) for n in range(6)]
    actions.run([steps], workers=2, label="sync", as_json=True)
    assert most[0] == 2
