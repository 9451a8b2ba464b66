"""Regression tests for the eleven ways the earlier store lost or corrupted data it had
reported as saved (issue 9), each on a real SeaweedFS server; the exits and crashes in
subprocesses killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from objectstore_s3 import (
    InvalidKeyError,
    KeyNotFoundError,
    LocalPathClashError,
    LocalStorageError,
    ObjectStore,
    ObjectStoreError,
    ObjectStoreSettings,
    SupersededWriteError,
)
from objectstore_s3.local import journal as journal_module
from tests.helpers import crash, requests_of
from tests.worker import ROOT, settings_json

pytestmark = pytest.mark.seaweedfs

MiB = 1024 * 1024
Factory = Callable[..., ObjectStoreSettings]


@pytest.fixture
def settings(seaweed_settings: Factory) -> Factory:
    return seaweed_settings


@pytest.fixture
def stores(settings: Factory) -> Iterator[Callable[..., ObjectStore]]:
    opened: list[ObjectStore] = []

    def open_store(**overrides: object) -> ObjectStore:
        on_error = overrides.pop("on_error", None)
        store = ObjectStore(settings(**overrides), on_error=on_error)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        if not store._closed:
            store.close()


def observer(stores: Callable[..., ObjectStore], tmp_path: Path) -> ObjectStore:
    """Another machine that always asks the bucket."""
    return stores(cache_dir=tmp_path / "observer", cache_revalidate=True)


def run_script(settings: ObjectStoreSettings, script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, settings_json(settings), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


HEADER = (
    "import json, sys, time\n"
    "from pathlib import Path\n"
    "from objectstore_s3 import ObjectStore, ObjectStoreSettings\n"
    "settings = ObjectStoreSettings(**json.loads(sys.argv[1]))\n"
)


# 1 -------------------------------------------------------------------------------------


def test_exit_without_close_uploads_even_when_uploads_need_thread_pools(
    settings: Factory, stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    script = HEADER + (
        "behind = ObjectStore(settings.model_copy(update={'persistence_interval_seconds': 3600,"
        " 'cache_dir': Path(sys.argv[2])}))\n"
        "for index in range(5):\n"
        "    behind.save(f'pending/{index}', f'value-{index}')\n"
        "through = ObjectStore(settings.model_copy(update={'cache_dir': Path(sys.argv[3]),"
        " 'multipart_threshold_bytes': 5 * 1024 * 1024, 'multipart_chunksize_bytes':"
        " 5 * 1024 * 1024}))\n"
        "Path(through.get_file_path('big.bin')).write_bytes(b'x' * (12 * 1024 * 1024))\n"
    )
    process = run_script(settings(), script, str(tmp_path / "a"), str(tmp_path / "b"))
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors
    assert "cannot schedule new futures" not in errors
    check = observer(stores, tmp_path)
    assert [check.read(f"pending/{index}") for index in range(5)] == [
        f"value-{index}" for index in range(5)
    ]
    assert check.read_bytes("big.bin") == b"x" * (12 * MiB)


# 2 -------------------------------------------------------------------------------------


def test_file_saved_after_a_pending_value_wins(
    stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    store = stores(persistence_interval_seconds=3600)
    store.save("k", b"OLD")
    path = Path(store.get_file_path("k"))
    assert path.read_bytes() == b"OLD"  # the pending value is what the file holds
    path.write_bytes(b"NEW")
    assert store.save("k")
    assert store.read_bytes("k") == b"NEW"
    store.flush()
    assert observer(stores, tmp_path).read_bytes("k") == b"NEW"


def test_uploaded_file_after_a_pending_value_wins(
    stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    store = stores(persistence_interval_seconds=3600)
    store.save("k", b"OLD")
    source = tmp_path / "new.bin"
    source.write_bytes(b"NEW")
    assert store.upload_file("k", source)
    assert store.read_bytes("k") == b"NEW"
    store.flush()
    assert observer(stores, tmp_path).read_bytes("k") == b"NEW"


def test_file_of_a_pending_delete_is_not_the_deleted_object(
    stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    writer = stores()
    writer.save("gone", b"deleted content")
    store = stores(persistence_interval_seconds=3600, cache_dir=tmp_path / "wb")
    store.delete("gone")
    path = Path(store.get_file_path("gone"))
    assert not path.exists()  # nothing downloaded: the key is being deleted
    store.flush()
    check = observer(stores, tmp_path)
    assert not check.contains_key("gone")  # the delete reached the bucket
    # Here it is a key handed out by get_file_path and not written yet (as the SPEC says):
    assert store.read_bytes("gone") is None
    path.write_bytes(b"new life")
    assert store.save("gone")
    assert check.read_bytes("gone") == b"new life"


# 3 -------------------------------------------------------------------------------------


def test_superseded_entry_is_not_uploaded_and_takes_no_reservation(
    stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    store = stores(persistence_interval_seconds=3600, storage_file_count=3)
    store.save("hot", "one")
    store.save("hot", "two")  # coalesces: the first is never uploaded
    calls = requests_of(store, "hot")
    store.flush()
    assert calls.count("PutObject") == 1
    assert observer(stores, tmp_path).read("hot") == "two"
    assert store._core.quota._state.held == {}  # no reservation left behind
    # Exactly the remaining capacity is usable: two more files, not one more.
    assert [store.save(f"k{index}", "v") for index in range(3)] == [True, True, False]


def test_save_accepted_during_an_upload_keeps_its_own_reservation(
    stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    store = stores(persistence_interval_seconds=3600, storage_file_count=2)
    store.save("hot", "first")
    entry = store._journal.get("hot")
    assert entry is not None
    started, release = threading.Event(), threading.Event()
    backend = store._core.objects
    real_put = backend.put

    def slow_put(key: str, data: bytes, **kwargs: object) -> object:
        if data == b"first":
            started.set()
            assert release.wait(30)
        return real_put(key, data, **kwargs)  # type: ignore[arg-type]

    backend.put = slow_put  # type: ignore[method-assign]
    flushing = threading.Thread(target=store.flush)
    flushing.start()
    assert started.wait(30)
    store.save("hot", "second")  # accepted while "first" is in flight
    release.set()
    flushing.join()
    store.flush()
    assert observer(stores, tmp_path).read("hot") == "second"
    assert store._core.quota._state.held == {}
    assert [store.save(f"k{index}", "v") for index in range(2)] == [True, False]


# 4 -------------------------------------------------------------------------------------


def test_replay_after_a_crash_never_overwrites_newer_writes(
    settings: Factory, stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    seed = stores()
    seed.save("gone", "A saw this")
    seed.save("doc", "original")
    node_a = settings(persistence_interval_seconds=3600, cache_dir=tmp_path / "node-a")
    script = HEADER + (
        "store = ObjectStore(settings)\n"
        "assert store.read('gone') == 'A saw this'\n"
        "store.save('doc', 'OLD from A')\n"
        "store.delete('gone')\n"
        "print('accepted', flush=True)\n"
        "time.sleep(3600)\n"
    )
    process = run_script(node_a, script)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "accepted"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
    node_b = stores(cache_dir=tmp_path / "node-b")
    node_b.save("doc", "B, after the crash")
    node_b.save("gone", "B, after the crash")
    errors: list[ObjectStoreError] = []
    with ObjectStore(node_a, on_error=errors.append) as replayed:  # adopts A's journal
        replayed.flush()
    check = observer(stores, tmp_path)
    assert check.read("doc") == "B, after the crash"
    assert check.read("gone") == "B, after the crash"
    dropped = [str(error) for error in errors if isinstance(error, SupersededWriteError)]
    assert sorted(name for name in ("doc", "gone") for text in dropped if f"'{name}'" in text) == [
        "doc",
        "gone",
    ]


# 5 -------------------------------------------------------------------------------------


def test_full_disk_save_raises_and_leaves_nothing(settings: Factory, tmp_path: Path) -> None:
    # A file-size limit makes the journal's write fail part-way, as a full disk does.
    script = HEADER + (
        "import resource, signal\n"
        "from objectstore_s3 import LocalStorageError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "store = ObjectStore(settings)\n"
        "store.save('small', 'fits')\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (600 * 1024, 600 * 1024))\n"
        "try:\n"
        "    store.save('big', b'x' * (700 * 1024))\n"
        "except LocalStorageError as exc:\n"
        "    print('refused:', exc, flush=True)\n"
        "else:\n"
        "    print('accepted', flush=True)\n"
        "store.close()\n"
    )
    node = settings(persistence_interval_seconds=3600, cache_dir=tmp_path / "node")
    process = run_script(node, script)
    out, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors
    assert out.startswith("refused:")
    assert "Free disk space" in out
    with ObjectStore(settings(cache_dir=tmp_path / "check", cache_revalidate=True)) as check:
        assert check.read("small") == "fits"
        assert not check.contains_key("big")
    assert list((tmp_path / "node" / "journal").rglob("seg-*.log")) == []


def test_short_writes_are_continued(
    stores: Callable[..., ObjectStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write

    def short_write(fd: int, data: object) -> int:
        return real_write(fd, memoryview(data)[:1000])  # type: ignore[arg-type]

    monkeypatch.setattr(journal_module.os, "write", short_write)
    store = stores(persistence_interval_seconds=3600, cache_dir=tmp_path / "node")
    value = os.urandom(50_000)
    assert store.save_bytes("k", value)
    crash(store)
    monkeypatch.undo()
    with ObjectStore(store.settings) as replayed:
        replayed.flush()
    assert observer(stores, tmp_path).read_bytes("k") == value


def test_value_over_the_record_limit_is_refused(
    stores: Callable[..., ObjectStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "MAX_RECORD_BYTES", 1000)
    store = stores(persistence_interval_seconds=3600)
    with pytest.raises(LocalStorageError, match="get_file_path"):
        store.save_bytes("k", b"x" * 1001)
    assert not store.contains_key("k")
    assert store._core.quota._state.held == {}


# 6 -------------------------------------------------------------------------------------


def test_a_damaged_record_does_not_drop_the_intact_ones_after_it(
    stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    store = stores(persistence_interval_seconds=3600, cache_dir=tmp_path / "node")
    for name in ("first", "second", "third"):
        store.save(name, f"{name} value")
    segment = store._journal.get("second")
    assert segment is not None
    path, offset = segment.segment.path, segment.offset
    crash(store)
    with path.open("r+b") as handle:  # flip a byte inside the second record's value
        handle.seek(offset + 2)
        byte = handle.read(1)
        handle.seek(offset + 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    errors: list[ObjectStoreError] = []
    with ObjectStore(store.settings, on_error=errors.append) as replayed:
        replayed.flush()
    check = observer(stores, tmp_path)
    assert check.read("first") == "first value"
    assert check.read("third") == "third value"
    assert not check.contains_key("second")
    assert any("damaged record" in str(error) for error in errors)


# 7 -------------------------------------------------------------------------------------


def test_interval_sync_never_uploads_a_half_written_file(
    settings: Factory, stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    script = HEADER + (
        "import os\n"
        "store = ObjectStore(settings)\n"
        "path = store.get_file_path('model.bin')\n"
        "block = os.urandom(1024 * 1024)\n"
        "with open(path, 'wb') as handle:\n"
        "    for index in range(40):\n"
        "        handle.write(block)\n"
        "        handle.flush()\n"
        "        if index == 16:\n"
        "            print('17 MiB written', flush=True)\n"
        "        time.sleep(0.05)\n"
    )
    node = settings(persistence_interval_seconds=0.2, cache_dir=tmp_path / "node")
    process = run_script(node, script)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "17 MiB written"
        time.sleep(0.6)  # three sync intervals pass while the writer is still writing
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
    assert not observer(stores, tmp_path).contains_key("model.bin")


# 8 -------------------------------------------------------------------------------------


def test_threads_saving_and_deleting_leave_no_entry_for_a_deleted_object(
    stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    store = stores()
    check = observer(stores, tmp_path)
    keys = [f"race/{index}" for index in range(4)]

    def churn(seed: int) -> None:
        for round_ in range(25):
            key = keys[(seed + round_) % len(keys)]
            try:
                if (seed + round_) % 3 == 0:
                    store.delete(key)
                else:
                    store.save(key, f"{seed}-{round_}")
                store.read(key)
            except KeyNotFoundError:
                pass

    threads = [threading.Thread(target=churn, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for key in keys:
        exists = check.contains_key(key)
        assert store.contains_key(key) == exists, key
        if exists:
            assert store.read(key) == check.read(key)
        else:
            with pytest.raises(KeyNotFoundError):
                store.read(key)


# 9 -------------------------------------------------------------------------------------


def test_contains_key_and_delete_respect_the_cache_max_age(
    stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    node = stores(cache_dir=tmp_path / "aged", cache_max_age_seconds=0.2)
    other = stores(cache_dir=tmp_path / "other")
    node.save("k", "v")
    other.delete("k")
    deadline = time.monotonic() + 10
    while node.contains_key("k") and time.monotonic() < deadline:
        threading.Event().wait(0.05)
    assert not node.contains_key("k")  # the entry aged out: the bucket was asked
    with pytest.raises(KeyNotFoundError):
        node.delete("k")
    with pytest.raises(KeyNotFoundError):
        node.read("k")


# 10 ------------------------------------------------------------------------------------


def test_write_behind_save_reads_only_the_cached_metadata(
    stores: Callable[..., ObjectStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = stores(persistence_interval_seconds=3600)
    big = os.urandom(8 * MiB)
    store.save_bytes("model", big)
    store.flush()
    assert store.read_bytes("model") == big  # cached
    reads: list[str] = []
    monkeypatch.setattr(store._cache, "get", lambda key: reads.append(key))
    assert store.save_bytes("model", b"small now")
    assert reads == []  # the size came from the entry's header, not the value
    monkeypatch.undo()
    assert store.read_bytes("model") == b"small now"


# 11 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["/.secret", "\\..model", "/.hidden/x", "./.x"])
def test_keys_that_would_be_hidden_are_refused(
    stores: Callable[..., ObjectStore], key: str
) -> None:
    store = stores()
    with pytest.raises(InvalidKeyError, match="starts with '.'"):
        store.save(key, "v")
    assert store.keys == []


def test_keys_a_and_a_slash_b_with_local_files(
    stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    store = stores()
    store.save("a", "parent")
    store.save("a/b", "child")
    assert store.keys == ["a", "a/b"]
    assert Path(store.get_file_path("a")).read_text() == "parent"
    with pytest.raises(LocalPathClashError, match="'a/b'") as caught:
        store.get_file_path("a/b")
    assert isinstance(caught.value, FileExistsError)
    assert store.read("a/b") == "child"  # still readable without a file
    assert store.delete("a")
    assert not observer(stores, tmp_path).contains_key("a")
    assert Path(store.get_file_path("a/b")).read_text() == "child"  # now it fits
    assert store.delete("a/b")
    assert store.keys == []
