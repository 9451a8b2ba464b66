"""Issue 18 break 4: an interrupt (KeyboardInterrupt, SystemExit, a signal handler's
exception) that ends a write after its request may have been sent is a lost answer: its
increase counts as a maybe until its horizon, never given back; and the writer never
leaves the cache or the journal claiming what did not happen. On the in-memory backend
and on SeaweedFS (the real backend the store opens, wrapped), and in a real process that
gets SIGINT in the middle of its saves."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings, StorageLimitExceededError
from objectstore_s3.local.segments import Segment
from objectstore_s3.transport.base import Backend
from objectstore_s3.transport.memory import MemoryBackend
from tests.support.helpers import ledger
from tests.support.interrupting import Interrupting, Plan
from tests.support.worker import spawn

LIMIT = 10


class Rig:
    """Stores on one organization whose object writes go through an `Interrupting`."""

    def __init__(self, settings: Callable[..., ObjectStoreSettings], real: Backend) -> None:
        self.settings = settings
        self.real = real
        self.opened: list[ObjectStore] = []

    def store(self, plan: Plan, **overrides: Any) -> ObjectStore:
        overrides.setdefault("storage_file_count", LIMIT)
        store = ObjectStore(self.settings(**overrides), backend=Interrupting(self.real, plan))
        self.opened.append(store)
        return store

    def objects(self, store: ObjectStore) -> dict[str, int]:
        scope = self.real.scoped(store._node.space.root)
        return {info.key: info.size for info in scope.list()}


@pytest.fixture(params=["memory", pytest.param("seaweedfs", marks=pytest.mark.seaweedfs)])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    closing: list[ObjectStore] = []
    if request.param == "memory":
        base = ObjectStoreSettings(
            endpoint_url="http://127.0.0.1:9",
            access_key_id="k",
            secret_access_key="s",
            organization_id="org-interrupts",
            cache_dir=tmp_path / "cache",
            local_root=tmp_path / "local",
            max_attempts=1,
        )
        real: Backend = MemoryBackend()
    else:
        base = request.getfixturevalue("seaweed_settings")()
        opener = ObjectStore(base)
        closing.append(opener)
        real = opener._connection()

    def settings(**overrides: Any) -> ObjectStoreSettings:
        return base.model_copy(update=overrides)

    made = Rig(settings, real)
    yield made
    for store in made.opened + closing:
        if not store._node.closed:
            store.close()


def _save_all(store: ObjectStore, keys: list[str]) -> dict[str, int]:
    counts = {"saved": 0, "interrupted": 0, "refused": 0}
    for key in keys:
        try:
            counts["saved" if store.save(key, f"value of {key}") else "refused"] += 1
        except KeyboardInterrupt:
            counts["interrupted"] += 1
        except StorageLimitExceededError:
            counts["refused"] += 1
    return counts


def test_interrupted_saves_never_pass_the_file_limit(rig: Rig) -> None:
    """Issue 18 break 4: 4 saves interrupted after their PUT landed and 2 before it was
    sent; no save then passes the limit of 10, and the ledger counts every landed object
    (as a maybe until its horizon)."""
    plan = Plan(["after", "pass", "before", "after", "after", "before", "pass", "after"])
    store = rig.store(plan)
    counts = _save_all(store, [f"k{index}" for index in range(30)])
    landed = rig.objects(store)
    assert counts["interrupted"] == 6
    assert counts["refused"] > 0
    assert len(landed) <= LIMIT
    assert len(landed) == counts["saved"] + 4  # the 4 interrupted after their PUT landed
    store.flush()
    state = ledger(store)
    assert state["files"] >= len(landed)
    assert sum(files for files, _, _ in state["maybes"]) >= 6  # type: ignore[attr-defined]
    # Another store of the organization cannot pass the limit either.
    other = rig.store(Plan(), cache_dir=rig.settings().cache_dir.parent / "other")
    _save_all(other, [f"o{index}" for index in range(5)])
    assert len(rig.objects(store)) <= LIMIT


def test_interrupted_overwrite_leaves_no_stale_cache(rig: Rig) -> None:
    """Issue 18 break 4: a write-through save interrupted after its PUT landed leaves no
    cache entry claiming the old value; one interrupted before it was sent leaves the old
    value readable."""
    plan = Plan()
    store = rig.store(plan)
    store.save("k", "v1")
    assert store.read("k") == "v1"
    plan.steps = ["after"]
    with pytest.raises(KeyboardInterrupt):
        store.save("k", "v2")
    assert store.read("k") == "v2"
    plan.steps = ["before"]
    with pytest.raises(KeyboardInterrupt):
        store.save("k", "v3")
    assert store.read("k") == "v2"


def test_interrupted_file_upload_and_delete_are_counted(rig: Rig) -> None:
    """Issue 18 break 4: a local file's upload interrupted after it landed counts as a
    maybe; a delete interrupted after it landed is gone from the node's view too; a
    recount counts the bucket (and the maybes, until their horizon)."""
    plan = Plan()
    store = rig.store(plan)
    path = Path(store.get_file_path("file"))
    path.write_bytes(b"x" * 1000)
    plan.steps = ["after"]
    with pytest.raises(KeyboardInterrupt):
        store.save("file")
    assert rig.objects(store) == {"file": 1000}
    store._node.parts.quota.settle()
    assert ledger(store)["files"] >= 1
    store.save("gone", "v")
    plan.steps = ["after"]
    with pytest.raises(KeyboardInterrupt):
        store.delete("gone")
    assert "gone" not in rig.objects(store)
    assert not store.contains_key("gone")
    usage = store.reconcile_usage()
    assert usage.files >= len(rig.objects(store)) == 1


def test_interrupted_write_behind_upload_is_a_maybe_and_stays_pending(rig: Rig) -> None:
    """Issue 18 break 4: a pending save whose upload is interrupted after it landed stays
    journaled, is counted (never given back), and the next flush completes it."""
    plan = Plan()
    store = rig.store(plan, persistence_interval_seconds=3600)
    store.save("k", "v")
    plan.steps = ["after"]
    with pytest.raises(KeyboardInterrupt):
        store.flush()
    assert store._node.local.journal.get("k") is not None
    store.flush()
    assert store._node.local.journal.get("k") is None
    assert rig.objects(store) == {"k": 1}
    assert ledger(store)["files"] >= 1
    assert store.read("k") == "v"


def test_write_behind_save_interrupted_by_a_signal_is_journaled_whole(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18 break 4: SIGINT while a write-behind save is being journaled waits for
    the record to be whole: the save is pending (and uploaded at flush), its room held."""
    store = rig.store(Plan(), persistence_interval_seconds=3600)
    store.save("warm", "v")  # the journal's segment exists
    append = Segment.append

    def interrupted_append(self: Segment, parts: Any, fsync: bool) -> int:
        offset = append(self, parts, fsync)
        signal.raise_signal(signal.SIGINT)  # in the middle of the journal's record
        return offset

    monkeypatch.setattr(Segment, "append", interrupted_append)
    with pytest.raises(KeyboardInterrupt):
        store.save("k", "v")
    monkeypatch.setattr(Segment, "append", append)
    entry = store._node.local.journal.get("k")
    assert entry is not None
    assert entry.token in store._node.parts.quota.book.state.held
    store.flush()
    assert store.read("k") == "v"
    assert set(rig.objects(store)) == {"warm", "k"}


@pytest.mark.seaweedfs
def test_sigint_in_the_middle_of_a_save_loop_never_passes_the_limit(
    seaweed_settings: Callable[..., ObjectStoreSettings],
) -> None:
    """Issue 18 break 4, in a real process: a worker whose saves each get SIGINT right
    after their PUT landed (its handler raises KeyboardInterrupt) keeps saving; the bucket
    never holds more than the limit, and the ledger counts what landed."""
    settings = seaweed_settings(storage_file_count=LIMIT)
    process = spawn(settings, "interrupted-saves", "k", "25")
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out
    counts = json.loads(out.strip().splitlines()[-1])
    assert counts["interrupted"] >= 4
    assert counts["refused"] > 0
    with ObjectStore(settings) as store:
        landed = {info.key for info in store._connection().scoped(store._node.space.root).list()}
        assert len(landed) <= LIMIT
        assert ledger(store)["files"] >= len(landed)  # type: ignore[operator]
