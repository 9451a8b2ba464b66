"""A hostile environment (issue 11), beside the network faults of test_faults.py: folders
other local users could write into, a damaged cache holding a user's own file, leftovers of
killed processes, other users' eyes on local files, and values nested too deep."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from objectstore_s3 import (
    ObjectDecodeError,
    ObjectStore,
    ObjectStoreError,
    UnsafeFolderError,
)
from objectstore_s3.local import cache as cache_module
from tests.conftest import StoreFactory
from tests.helpers import crash


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
    segment = victim._journal.get("planted")
    assert segment is not None
    path = segment.segment.path
    crash(victim)  # the segment is now one a dead process left behind
    os.chown(path, 65534, 65534)  # ...and it belongs to another user
    with pytest.raises(UnsafeFolderError, match="journal segment"):
        make_store(persistence_interval_seconds=3600, cache_dir=tmp_path / "node")
    observer = make_store(cache_dir=tmp_path / "observer")
    assert not observer.contains_key("planted")


def test_new_folders_are_owner_only(make_store: StoreFactory, tmp_path: Path) -> None:
    writer = make_store()
    writer.save_bytes("d/model.bin", b"weights")
    store = make_store(cache_dir=tmp_path / "c2", local_root=tmp_path / "l2")
    path = Path(store.get_file_path("d/model.bin"))
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


# -- a damaged cache --------------------------------------------------------------------------


def test_rebuilding_a_damaged_cache_removes_only_what_it_made(store: ObjectStore) -> None:
    store.save("k", "real")
    folder = store.settings.cache_dir / "cache"
    mine = folder / "notes.txt"
    mine.write_text("the user's own file")
    store._cache.close()
    (folder / "cache.db").write_bytes(b"this is not a sqlite database" * 10)
    assert store.read("k") == "real"  # a miss, then the bucket
    assert mine.read_text() == "the user's own file"


def test_a_programming_error_in_the_cache_is_not_taken_for_damage(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save("k", "real")

    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("a bug, not damage")

    monkeypatch.setattr(cache_module, "_parse_header", broken)
    with pytest.raises(TypeError, match="a bug"):
        store.read("k")
    monkeypatch.undo()
    assert (store.settings.cache_dir / "cache" / "cache.db").exists()  # not wiped
    assert store.read("k") == "real"


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


@pytest.mark.seaweedfs
def test_reconcile_aborts_incomplete_multipart_uploads(
    seaweed_settings: object, tmp_path: Path
) -> None:
    settings = seaweed_settings()  # type: ignore[operator]
    with ObjectStore(settings) as store:
        store.save("k", "v")
        client = store._connection().client  # type: ignore[attr-defined]
        bucket_key = f"{store.organization_id}/killed-sync-back.bin"
        upload = client.create_multipart_upload(Bucket=settings.bucket, Key=bucket_key)
        client.upload_part(
            Bucket=settings.bucket,
            Key=bucket_key,
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"x" * (5 * 1024 * 1024),
        )
        listed = client.list_multipart_uploads(Bucket=settings.bucket, Prefix=bucket_key)
        assert len(listed.get("Uploads", [])) == 1
        store.reconcile_usage()  # keeps uploads younger than an hour
        assert (
            len(
                client.list_multipart_uploads(Bucket=settings.bucket, Prefix=bucket_key).get(
                    "Uploads", []
                )
            )
            == 1
        )
        usage = store.reconcile_usage(abort_uploads_older_than=0)
        left = client.list_multipart_uploads(Bucket=settings.bucket, Prefix=bucket_key)
        assert left.get("Uploads", []) == []
        assert usage.files == 1


# -- values nested too deep ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "read"),
    [
        (b"[" * 100_000 + b"]" * 100_000, lambda s: s.read_json("deep")),
        (b"[" * 100_000 + b"]" * 100_000, lambda s: s.ReadJson[list[object]]("deep")),
        (b"<a>" * 10_000 + b"</a>" * 10_000, lambda s: s.ReadXml[dict[str, object]]("deep")),
    ],
    ids=["json", "typed-json", "typed-xml"],
)
def test_values_nested_too_deep_are_decode_errors(
    store: ObjectStore, body: bytes, read: object
) -> None:
    store.save_bytes("deep", body)
    with pytest.raises(ObjectDecodeError, match="'deep'") as caught:
        read(store)  # type: ignore[operator]
    assert isinstance(caught.value, ObjectStoreError)
    assert not isinstance(caught.value.__cause__, RecursionError) or "deep" in str(caught.value)
