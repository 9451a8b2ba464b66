"""The write-behind journal on a real SeaweedFS server (issue 9): a replay after a crash
never overwrites newer writes, a full disk or short writes lose nothing, and a damaged
record does not drop the intact ones after it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from objectstore_s3 import (
    LocalStorageError,
    ObjectStore,
    ObjectStoreError,
    SupersededWriteError,
)
from objectstore_s3.local import journal as journal_module
from tests.support.helpers import crash
from tests.support.seaweed_stores import HEADER, Factory, observer, run_node, run_script
from tests.support.worker import kill_after

pytestmark = pytest.mark.seaweedfs


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
    kill_after(process, "accepted")
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


def test_full_disk_save_raises_and_leaves_nothing(settings: Factory, tmp_path: Path) -> None:
    # A file-size limit makes the journal's write fail part-way, as a full disk does.
    script = (
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
    process = run_node(settings, tmp_path, 3600, script)
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
    assert store._node.parts.quota.book.state.held == {}


def test_a_damaged_record_does_not_drop_the_intact_ones_after_it(
    stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    store = stores(persistence_interval_seconds=3600, cache_dir=tmp_path / "node")
    for name in ("first", "second", "third"):
        store.save(name, f"{name} value")
    segment = store._node.local.journal.get("second")
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
