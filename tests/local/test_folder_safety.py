"""Local folders in a hostile environment (issue 11): folders other local users could write
into, a planted journal segment, owner-only new folders and files (other users' eyes), and
leftovers of killed processes. A damaged cache is in test_cache.py."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from objectstore_s3 import (
    UnsafeFolderError,
)
from tests.conftest import StoreFactory
from tests.support.helpers import crash, file_from_another_node


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- folders others could write into --------------------------------------------------------


@pytest.mark.parametrize("folder", ["", "journal", "cache"])
def test_a_folder_others_can_write_into_is_refused(
    make_store: StoreFactory, tmp_path: Path, folder: str
) -> None:
    store = make_store(persistence_interval_seconds=3600, cache_dir=tmp_path / "node")
    store.save("k", "v")
    store.read("k")
    store.close()
    target = tmp_path / "node" / folder if folder else tmp_path / "node"
    os.chmod(target, 0o777)  # noqa: S103  (the point of the test)
    with pytest.raises(UnsafeFolderError, match=str(target)) as caught:
        make_store(persistence_interval_seconds=3600, cache_dir=tmp_path / "node")
    assert "chmod 700" in str(caught.value)
    assert isinstance(caught.value, PermissionError)


def test_a_planted_journal_segment_is_not_replayed(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    victim = make_store(persistence_interval_seconds=3600, cache_dir=tmp_path / "node")
    victim.save("planted", "by someone else")
    segment = victim._node.local.journal.get("planted")
    assert segment is not None
    path = segment.segment.path
    crash(victim)  # the segment is now one a dead process left behind
    os.chown(path, 65534, 65534)  # ...and it belongs to another user
    with pytest.raises(UnsafeFolderError, match="journal segment"):
        make_store(persistence_interval_seconds=3600, cache_dir=tmp_path / "node")
    observer = make_store(cache_dir=tmp_path / "observer")
    assert not observer.contains_key("planted")


def test_new_folders_are_owner_only(make_store: StoreFactory, tmp_path: Path) -> None:
    _, store, path = file_from_another_node(
        make_store, "d/model.bin", b"weights", cache_dir=tmp_path / "c2", local_root=tmp_path / "l2"
    )
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert mode(tmp_path / "l2" / store.organization_id) == 0o700
    own = Path(store.get_file_path("mine.csv"))
    own.write_text("a,b\n")  # created by the user with their umask (0644 here)
    os.chmod(own, 0o644)
    assert store.save("mine.csv")
    assert mode(own) == 0o600  # a data file is readable by its owner only once synced
    for record in (tmp_path / "c2" / "files").glob("*.json"):
        assert mode(record) == 0o600


# -- leftovers of killed processes --------------------------------------------------------------


def test_temporary_files_of_dead_processes_are_removed_later(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    make_store().save_bytes("data/big.bin", b"x" * 1000)
    store = make_store(cache_dir=tmp_path / "node", local_root=tmp_path / "local")
    folder = tmp_path / "local" / store.organization_id / "data"
    folder.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    stale = folder / f".big.bin.{dead_pid}.140000.part"
    stale.write_bytes(b"half a download" * 1000)
    live = folder / f".other.bin.{os.getpid()}.1.part"  # this process's: kept
    live.write_bytes(b"in progress")
    assert Path(store.get_file_path("data/big.bin")).read_bytes() == b"x" * 1000
    assert not stale.exists()
    assert live.exists()
