"""The node owns a store's parts: it closes every one it opened, and it belongs to the
process that opened it (a forked child's exit leaves the parent's work alone)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket


class ClosingBackend(MemoryBackend):
    """A memory backend that counts its closes."""

    closes = 0

    def close(self) -> None:
        type(self).closes += 1


def settings_in(tmp_path: Path, **overrides: object) -> ObjectStoreSettings:
    return ObjectStoreSettings(
        cache_dir=tmp_path / "cache",
        local_root=tmp_path / "files",
        endpoint_url="http://127.0.0.1:9",
        **overrides,  # type: ignore[arg-type]
    )


def test_close_closes_the_backend_the_store_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ClosingBackend, "closes", 0)
    opened = ClosingBackend(MemoryBucket())
    monkeypatch.setattr("objectstore_s3.node.connect.open_backend", lambda settings: opened)
    store = ObjectStore(settings_in(tmp_path))
    store.save("k", "v")
    store.close()
    store.close()  # idempotent
    assert ClosingBackend.closes == 1


def test_an_injected_backend_is_left_to_its_owner(tmp_path: Path) -> None:
    injected = ClosingBackend(MemoryBucket())
    closes = ClosingBackend.closes
    with ObjectStore(settings_in(tmp_path), backend=injected) as store:
        store.save("k", "v")
    assert ClosingBackend.closes == closes
    assert "k" in [info.key.rpartition("/")[2] for info in injected.list()]  # still usable


def test_a_store_never_used_opens_no_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(settings: ObjectStoreSettings) -> None:
        raise AssertionError("a backend was opened")

    monkeypatch.setattr("objectstore_s3.node.connect.open_backend", refuse)
    ObjectStore(settings_in(tmp_path)).close()


def _exit_at_once() -> None:
    """A forked worker that never touches the store."""


def test_a_forked_childs_exit_leaves_the_parents_pending_work(tmp_path: Path) -> None:
    # Fork (Linux's default before 3.14) copies the store and its exit hook; the hook
    # runs in the child as it ends (multiprocessing calls threading's exit hooks). It must
    # not flush, append to or unlink the parent's journal there.
    bucket = MemoryBucket()
    store = ObjectStore(
        settings_in(tmp_path, persistence_interval_seconds=3600), backend=MemoryBackend(bucket)
    )
    store.save("k", "pending")
    journal = tmp_path / "cache" / "journal"
    segments = sorted(path.name for path in journal.rglob("*") if path.is_file())
    child = multiprocessing.get_context("fork").Process(target=_exit_at_once)
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert sorted(path.name for path in journal.rglob("*") if path.is_file()) == segments
    assert store._node.local.journal.get("k") is not None  # still pending in the parent
    store.close()
    assert MemoryBackend(bucket).scoped(store._node.space.root).get("k").body == b"pending"
