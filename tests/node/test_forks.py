"""A store belongs to the process that opened it (issue 18, break 1: fork).

A worker forked while a store is open (multiprocessing's default on Linux before 3.14)
inherits the store, its open journal segment and SQLite connections, its pending work and
its exit hook. Used in the child, the store becomes the child's own (a journal segment, a
cache connection, a lease of its own); the child never writes, flushes, unlinks or
uploads the parent's state, at its exit or otherwise. A spawned worker opens its own
store on the same node; a store itself is never pickled across.

On the session's SeaweedFS server, in real processes, in both write modes, with a
`get_file_path` file the parent is still writing.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable
from multiprocessing.queues import Queue
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreError, ObjectStoreSettings
from tests.support.helpers import crash
from tests.support.seaweed_stores import observer

pytestmark = pytest.mark.seaweedfs

MODES = {"write-through": 0, "write-behind": 3600}
PARTIAL = b"half of a model the parent is still writing"


def _segments(store: ObjectStore) -> list[str]:
    folder = store.settings.cache_dir / "journal"
    return sorted(path.name for path in folder.rglob("*") if path.is_file())


def _child_uses_inherited(store: ObjectStore, results: Queue[object]) -> None:
    """A forked worker that uses the store it inherited, then ends (its exit hook runs)."""
    try:
        store.save("child-key", b"from the child")
        results.put(("ok", store.read_bytes("k"), store.read_bytes("child-key")))
    except BaseException as exc:  # reported to the parent, which fails the test
        results.put(("error", repr(exc)))


def _child_opens_its_own(settings: ObjectStoreSettings, results: Queue[object]) -> None:
    """A spawned worker: opens its own store on the parent's node (same cache_dir)."""
    try:
        with ObjectStore(settings) as store:
            store.save("child-key", b"from the child")
            results.put(("ok", store.read_bytes("k"), store.read_bytes("child-key")))
    except BaseException as exc:
        results.put(("error", repr(exc)))


def _run_child(method: str, store: ObjectStore) -> tuple[object, ...]:
    context = multiprocessing.get_context(method)
    results: Queue[object] = context.Queue()
    target: Callable[..., None]
    if method == "fork":
        target, argument = _child_uses_inherited, store
    else:
        target, argument = _child_opens_its_own, store.settings  # type: ignore[assignment]
    child = context.Process(target=target, args=(argument, results))
    child.start()
    outcome = results.get(timeout=120)
    child.join(timeout=120)
    assert child.exitcode == 0
    assert isinstance(outcome, tuple)
    assert outcome[0] == "ok", outcome
    return outcome


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("mode", MODES, ids=list(MODES))
def test_a_child_process_never_touches_the_parents_state(
    stores: Callable[..., ObjectStore], tmp_path: Path, method: str, mode: str
) -> None:
    interval = MODES[mode]
    store = stores(persistence_interval_seconds=interval)
    store.save("k", b"v0")
    store.flush()
    store.save("k", b"v1")  # pending in write-behind mode
    model = Path(store.get_file_path("model"))
    model.write_bytes(PARTIAL)  # the parent is still writing it
    before = _segments(store)

    _, child_read, child_own = _run_child(method, store)

    # The child saw the bucket (never the parent's pending work), and its own save landed
    # with its own flush at its exit.
    assert child_read == (b"v0" if interval else b"v1")
    assert child_own == b"from the child"
    look = observer(stores, tmp_path)
    assert look.read_bytes("child-key") == b"from the child"
    # The parent's journal is as it was: no segment unlinked, none of its work flushed
    # at the child's exit, no half-written local file uploaded.
    assert [name for name in _segments(store) if name in before] == before
    assert not look.contains_key("model")
    assert look.read_bytes("k") == (b"v0" if interval else b"v1")

    # The parent goes on: its newer save wins over its older pending one, and its local
    # file is uploaded when it is done.
    store.save("k", b"v2")
    model.write_bytes(PARTIAL + b" and the rest")
    assert store.save("model")
    store.flush()
    assert look.read_bytes("k") == b"v2"
    assert look.read_bytes("model") == PARTIAL + b" and the rest"


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_parent_killed_after_a_child_ended_is_replayed(
    stores: Callable[..., ObjectStore], tmp_path: Path, method: str
) -> None:
    store = stores(persistence_interval_seconds=3600)
    store.save("k", b"v0")
    store.flush()
    store.save("k", b"pending in the parent")
    _run_child(method, store)
    crash(store)  # killed: its journal segment must still be there for the next store
    reopened = stores(persistence_interval_seconds=3600)
    reopened.flush()
    assert observer(stores, tmp_path).read_bytes("k") == b"pending in the parent"


def test_a_store_is_never_pickled(stores: Callable[..., ObjectStore]) -> None:
    store = stores()
    with pytest.raises(ObjectStoreError, match="open one in that process") as raised:
        pickle.dumps(store)
    assert isinstance(raised.value, TypeError)
    assert pickle.loads(pickle.dumps(store.settings)) == store.settings  # settings travel
