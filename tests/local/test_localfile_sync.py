"""Local files synced back to the bucket: a changed file is uploaded on each trigger and every
interval, an unchanged one is not, an equal-size rewrite in the same second is seen, a
half-written file never is; deletes remove the object, the cache entry and the file, and
close keeps the files."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from objectstore_s3 import (
    KeyNotFoundError,
    ObjectStore,
)
from tests.conftest import StoreFactory
from tests.support.helpers import bucket_view, requests_of
from tests.support.seaweed_stores import Factory, observer, run_node
from tests.support.worker import kill_after


@pytest.mark.parametrize("trigger", ["save", "flush", "close", "clear", "context"])
def test_changed_file_uploaded_on_each_trigger(
    make_store: StoreFactory, tmp_path: Path, trigger: str
) -> None:
    observer = bucket_view(make_store, tmp_path)
    if trigger == "context":
        with make_store() as store:
            Path(store.get_file_path("f")).write_text(trigger)
    else:
        store = make_store()
        Path(store.get_file_path("f")).write_text(trigger)
        {
            "save": lambda: store.save("f"),
            "flush": store.flush,
            "close": store.close,
            "clear": store.clear,
        }[trigger]()
    assert observer.read("f") == trigger


def test_changed_file_uploaded_every_interval(make_store: StoreFactory, tmp_path: Path) -> None:
    store = make_store(persistence_interval_seconds=0.1)
    observer = bucket_view(make_store, tmp_path)
    Path(store.get_file_path("f")).write_text("by the timer")
    done = threading.Event()
    for _ in range(200):
        if observer.contains_key("f"):
            done.set()
            break
        done.wait(0.05)
    assert done.is_set()
    assert observer.read("f") == "by the timer"


def test_unchanged_file_not_reuploaded(make_store: StoreFactory) -> None:
    store = make_store()
    path = Path(store.get_file_path("f"))
    path.write_bytes(b"x" * 1000)
    store.flush()
    calls = requests_of(store, "f")
    store.flush()
    store.flush()
    assert "PutObject" not in calls
    os.utime(path)  # touched, same content
    store.flush()
    assert "PutObject" not in calls


def test_equal_size_rewrite_in_the_same_second_is_seen(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    store = make_store()
    path = Path(store.get_file_path("f"))
    path.write_text("aaaa")
    store.save("f")
    stat = path.stat()
    path.write_text("bbbb")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime
    store.flush()
    assert bucket_view(make_store, tmp_path).read("f") == "bbbb"


def test_delete_removes_object_cache_and_file(make_store: StoreFactory, tmp_path: Path) -> None:
    store = make_store()
    store.save("k", "v")
    path = Path(store.get_file_path("k"))
    assert path.read_text() == "v"
    store.delete("k")
    assert not path.exists()
    assert store._node.local.cache.get("k") is None
    with pytest.raises(KeyNotFoundError):
        bucket_view(make_store, tmp_path).read("k")


def test_close_keeps_local_files(make_store: StoreFactory) -> None:
    store = make_store()
    path = Path(store.get_file_path("keep"))
    path.write_text("mine")
    store.close()
    assert path.read_text() == "mine"


@pytest.mark.seaweedfs
def test_interval_sync_never_uploads_a_half_written_file(
    settings: Factory, stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    script = (
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
    process = run_node(settings, tmp_path, 0.2, script)
    # Three sync intervals pass while the writer is still writing:
    kill_after(process, "17 MiB written", wait=0.6)
    assert not observer(stores, tmp_path).contains_key("model.bin")
