"""Write-behind persistence: journal first, coalesced uploads, read-your-writes, flush on
close and exit, SIGKILL then replay, an unreachable bucket, and several writers per node."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from objectstore_s3 import (
    KeyNotFoundError,
    KeyValuePair,
    ObjectStore,
    StorageUnavailableError,
)
from objectstore_s3.server.seaweedfs import SeaweedServer
from tests.conftest import SettingsFactory, StoreFactory, store_settings, unreachable_settings
from tests.support.helpers import break_backend, bucket_view, requests_of
from tests.support.worker import ROOT, kill_after, settings_json, spawn


def test_save_returns_before_upload_and_flush_uploads(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    store = make_store(persistence_interval_seconds=3600)
    observer = bucket_view(make_store, tmp_path)
    assert store.save("k", "v") is True
    assert not observer.contains_key("k")
    store.flush()
    assert observer.read("k") == "v"
    assert not store._node.local.journal


def test_read_your_writes_before_upload(make_store: StoreFactory, tmp_path: Path) -> None:
    writer = make_store()
    writer.save("old", "1")
    writer.save("gone", "2")
    store = make_store(persistence_interval_seconds=3600, cache_dir=tmp_path / "wb")
    store.save("new", "3")
    store.delete("gone")
    assert store.read("new") == "3"
    assert store.contains_key("new")
    assert not store.contains_key("gone")
    with pytest.raises(KeyNotFoundError):
        store.read("gone")
    with pytest.raises(KeyNotFoundError):
        store.delete("gone")
    assert store.keys == ["new", "old"]
    assert list(store) == [KeyValuePair("new", b"3"), KeyValuePair("old", b"1")]
    observer = bucket_view(make_store, tmp_path)
    assert observer.keys == ["gone", "old"]  # nothing reached the bucket yet
    store.flush()
    assert observer.keys == ["new", "old"]


def test_repeated_saves_coalesce_into_one_upload(make_store: StoreFactory) -> None:
    store = make_store(persistence_interval_seconds=3600)
    for index in range(10):
        store.save("hot", str(index))
    calls = requests_of(store, "hot")
    store.flush()
    assert calls.count("PutObject") == 1
    assert store.read("hot") == "9"


def test_background_flusher_uploads_on_its_own(make_store: StoreFactory, tmp_path: Path) -> None:
    store = make_store(persistence_interval_seconds=0.05)
    observer = bucket_view(make_store, tmp_path)
    store.save("k", "v")
    deadline = 200
    while deadline and not observer.contains_key("k"):
        threading.Event().wait(0.05)
        deadline -= 1
    assert observer.read("k") == "v"


def test_close_and_context_manager_flush(make_store: StoreFactory, tmp_path: Path) -> None:
    observer = bucket_view(make_store, tmp_path)
    with make_store(persistence_interval_seconds=3600, cache_dir=tmp_path / "a") as store:
        store.save("a", "1")
    second = make_store(persistence_interval_seconds=3600, cache_dir=tmp_path / "b")
    second.save("b", "2")
    second.close()
    assert observer.keys == ["a", "b"]


def test_interpreter_exit_flushes(make_http_settings: SettingsFactory, tmp_path: Path) -> None:
    settings = make_http_settings(persistence_interval_seconds=3600)
    script = (
        "import json, sys\n"
        "from objectstore_s3 import ObjectStore, ObjectStoreSettings\n"
        "store = ObjectStore(ObjectStoreSettings(**json.loads(sys.argv[1])))\n"
        "store.save('at-exit', 'flushed')\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, settings_json(settings)], check=True, cwd=ROOT, timeout=120
    )
    with ObjectStore(make_http_settings(cache_dir=tmp_path / "check")) as check:
        assert check.read("at-exit") == "flushed"


def test_sigkill_then_replay(make_http_settings: SettingsFactory, tmp_path: Path) -> None:
    settings = make_http_settings(persistence_interval_seconds=3600)
    process = spawn(settings, "save-and-wait", "wb", "20")
    kill_after(process, "saved")
    observer = ObjectStore(make_http_settings(cache_dir=tmp_path / "observer"))
    assert observer.keys == []  # the killed process uploaded nothing
    with ObjectStore(settings) as reopened:  # same settings, same node: replays
        assert reopened.read("wb/7") == "value-7"  # visible before the upload too
    assert observer.keys == sorted(f"wb/{index}" for index in range(20))
    assert observer.read("wb/19") == "value-19"
    observer.close()


def test_unreachable_bucket_keeps_journal(
    make_store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors: list[Exception] = []
    store = make_store(persistence_interval_seconds=3600, on_error=errors.append)
    store.save("first", "1")
    store.flush()  # the store now holds a quota lease

    break_backend(store, monkeypatch, StorageUnavailableError("the bucket is unreachable"))
    assert store.save("k", "v") is True  # accepted against the lease
    store.delete("first")
    with pytest.raises(StorageUnavailableError):
        store.flush()
    assert store.read("k") == "v"
    with pytest.raises(StorageUnavailableError):
        store.close()
    monkeypatch.undo()
    with make_store(persistence_interval_seconds=3600) as reopened:  # replays the journal
        assert reopened.read("k") == "v"
    observer = bucket_view(make_store, tmp_path)
    assert observer.keys == ["k"]
    assert observer.read("k") == "v"


def test_fresh_store_without_bucket_refuses_rather_than_pretends(tmp_path: Path) -> None:
    settings = unreachable_settings(
        tmp_path, persistence_interval_seconds=3600, max_attempts=1, connect_timeout_seconds=0.5
    )
    store = ObjectStore(settings)
    # No quota capacity was ever reserved, so the save cannot be accepted safely.
    with pytest.raises(StorageUnavailableError):
        store.save("k", "v")
    assert store._node.local.journal.get("k") is None
    store.close()


@pytest.mark.seaweedfs
def test_server_restart_while_saving(tmp_path: Path) -> None:
    server = SeaweedServer(tmp_path / "restartable")
    server.start()
    try:
        settings = store_settings(tmp_path, server, persistence_interval_seconds=0.1)
        ObjectStore(settings.model_copy(update={"persistence_interval_seconds": 0})).create_bucket()
        errors: list[Exception] = []
        store = ObjectStore(settings, on_error=errors.append)
        for index in range(30):
            store.save(f"k{index}", str(index))
        server.stop(timeout=2)
        for index in range(30, 60):
            assert store.save(f"k{index}", str(index))  # accepted while the server is down
        with pytest.raises(StorageUnavailableError):
            store.flush()
        assert store.read("k59") == "59"
        server.start()  # same data folder, same port
        store.flush()
        store.close()
        with ObjectStore(
            settings.model_copy(
                update={
                    "cache_dir": tmp_path / "check",
                    "persistence_interval_seconds": 0,
                }
            )
        ) as check:
            assert check.keys == sorted(f"k{index}" for index in range(60))
            assert check.read("k45") == "45"
    finally:
        server.stop(timeout=2)


def test_two_stores_in_one_process_share_a_node(make_store: StoreFactory, tmp_path: Path) -> None:
    first = make_store(persistence_interval_seconds=0.05)
    second = make_store(persistence_interval_seconds=0.05)  # same cache_dir and journal
    threads = [
        threading.Thread(target=lambda s=s, n=n: [s.save(f"{n}/{i}", f"{n}{i}") for i in range(25)])
        for s, n in ((first, "a"), (second, "b"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first.flush()
    second.flush()
    observer = bucket_view(make_store, tmp_path)
    assert len(observer.keys) == 50
    assert observer.read("b/24") == "b24"


def test_two_processes_share_a_node(make_http_settings: SettingsFactory, tmp_path: Path) -> None:
    settings = make_http_settings(persistence_interval_seconds=0.05)
    processes = [spawn(settings, "save-and-close", name, "30") for name in ("p1", "p2")]
    for process in processes:
        assert process.wait(timeout=120) == 0
    with ObjectStore(make_http_settings(cache_dir=tmp_path / "check")) as check:
        assert len(check.keys) == 60
        assert check.read("p2/29") == "value-29"
    # Closed here, while its server runs: a store left open would be closed at exit, after
    # the session's servers stopped, and log that its quota lease could not be released.
    with ObjectStore(settings) as reopened:
        assert not reopened._node.local.journal
