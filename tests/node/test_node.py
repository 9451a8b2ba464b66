"""The node owns a store's parts: it closes every one it opened, and it belongs to the
process that opened it (a forked child's exit leaves the parent's work alone)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings, StorageUnavailableError
from objectstore_s3.quota import LEDGER
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


def _ledger_down(bucket: MemoryBucket) -> None:
    """From now on, every request on the quota ledger fails as an unreachable server."""

    def hook(operation: str, key: str) -> None:
        if key.endswith(LEDGER):
            raise StorageUnavailableError("the server went away")

    bucket.hooks.append(hook)


def test_close_logs_a_failed_lease_release_instead_of_raising(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 18, break 9: a server gone at the end of a write-through script must not
    # turn its clean exit into a traceback; the lease expires by itself.
    bucket = MemoryBucket()
    store = ObjectStore(settings_in(tmp_path), backend=MemoryBackend(bucket))
    store.save("k", "v")
    _ledger_down(bucket)
    store.close()
    assert store._node.closed
    assert "could not release its quota lease" in caplog.text


def test_a_failed_close_never_replaces_the_exception_that_ended_the_block(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 18, break 9: the caller sees the exception that ended the `with` block, even
    # when the flush at close fails too (write-behind work that cannot be uploaded).
    bucket = MemoryBucket()
    backend = MemoryBackend(bucket)
    store = ObjectStore(settings_in(tmp_path, persistence_interval_seconds=3600), backend=backend)
    with pytest.raises(ZeroDivisionError):
        _fail_inside(store, bucket)
    assert "could not close cleanly" in caplog.text
    assert [path for path in (tmp_path / "cache" / "journal").rglob("*") if path.is_file()]


def _fail_inside(store: ObjectStore, bucket: MemoryBucket) -> None:
    with store:
        store.save("k", "pending")
        bucket.hooks.append(_unreachable)
        raise ZeroDivisionError


def _unreachable(operation: str, key: str) -> None:
    raise StorageUnavailableError("the server went away")


@pytest.mark.seaweedfs
def test_close_releases_the_http_connections_it_opened(
    stores: Callable[..., ObjectStore],
) -> None:
    # Issue 18, break 9: the store closes every part it opened, the client's connection
    # pool included (a process that opens and closes stores must not accumulate sockets).
    store = stores()
    store.save("k", b"v")
    connection = store._node.connection()
    manager = connection._c.client._endpoint.http_session._manager  # type: ignore[attr-defined]
    assert len(manager.pools) > 0
    store.close()
    assert len(manager.pools) == 0
