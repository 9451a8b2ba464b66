"""Issue 19, quotas on a versioned bucket: stored bytes include noncurrent versions, the
file count is the number of keys; retention (`keep_versions`, `keep_versions_days`) prunes
the oldest noncurrent versions and the ledger gives their bytes back exactly, once, however
many nodes prune; at rest the ledger equals a listing of every version. On the in-memory
backend (some with a clock the test drives) and on a versioned SeaweedFS bucket."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from objectstore_s3 import KeyNotFoundError, ObjectStore, ObjectStoreSettings
from objectstore_s3.errors import OutcomeUnknownError, StorageUnavailableError
from objectstore_s3.quota import LEDGER
from objectstore_s3.quota.versions import key_versions
from objectstore_s3.transport.base import VersionInfo
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket
from tests.conftest import store_settings
from tests.support.helpers import ledger
from tests.support.model.envs import FakeClock

VERSIONED_BUCKET = "quota-versions-tests"
Stores = Callable[..., ObjectStore]


class Org:
    """Stores of one organization on a versioned bucket; `bucket` on memory only."""

    def __init__(self, base: ObjectStoreSettings, folder: Path, bucket: MemoryBucket | None):
        self.base = base
        self.folder = folder
        self.bucket = bucket
        self.opened: list[ObjectStore] = []

    def store(self, name: str = "a", **overrides: Any) -> ObjectStore:
        folders = {"cache_dir": self.folder / name / "cache", "local_root": self.folder / name}
        settings = self.base.model_copy(update={**folders, **overrides})
        backend = None if self.bucket is None else MemoryBackend(self.bucket)
        store = ObjectStore(settings, backend=backend)
        self.opened.append(store)
        return store


def _memory(folder: Path, clock: Callable[[], float] | None = None) -> Org:
    bucket = MemoryBucket(clock=clock) if clock is not None else MemoryBucket()
    bucket.versioning = "enabled"
    base = ObjectStoreSettings(
        endpoint_url="http://127.0.0.1:9",
        access_key_id="k",
        secret_access_key="s",
        organization_id=f"org-{uuid.uuid4().hex[:10]}",
        max_attempts=1,
    )
    return Org(base, folder, bucket)


@pytest.fixture(params=["memory", pytest.param("seaweedfs", marks=pytest.mark.seaweedfs)])
def org(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Org]:
    if request.param == "memory":
        made = _memory(tmp_path)
    else:
        base = store_settings(tmp_path, request.getfixturevalue("seaweed"), bucket=VERSIONED_BUCKET)
        with ObjectStore(base) as store:
            store._connection().create_bucket(versioned=True)
        made = Org(base, tmp_path, None)
    yield made
    for store in made.opened:
        if not store._node.closed:
            store.close()


def all_versions(store: ObjectStore) -> tuple[int, int]:
    """(bytes, files) from a listing of every version: each version's bytes, and the keys
    whose latest version is not a delete marker."""
    total = files = 0
    for version in store._node.parts.objects.list_versions():
        if not version.deleted:
            total += version.size
            files += version.latest
    return total, files


def committed(store: ObjectStore) -> tuple[int, int]:
    book = ledger(store)
    return int(book["bytes"]), int(book["files"])  # type: ignore[call-overload]


def test_quota_at_rest_equals_a_listing_of_all_versions(org: Org) -> None:
    """Issue 19: saves, overwrites, deletes and re-creates of shared keys by two nodes;
    at rest the ledger (without a recount) equals a listing of every version, and so do
    usage() and reconcile_usage()."""
    a, b = org.store("a"), org.store("b")
    a.save_bytes("k", b"1" * 100)
    b.save_bytes("k", b"2" * 250)  # over a's: a's version stays, noncurrent
    a.save_bytes("j", b"3" * 40)
    b.delete("j")  # a delete marker: the key is gone, its 40 bytes stay
    a.save_bytes("j", b"4" * 7)  # re-created on top of the marker
    b.save_bytes("gone", b"5" * 30)
    a.delete("gone")
    a.close()
    b.close()
    check = org.store("check")
    listed = all_versions(check)
    assert listed == (100 + 250 + 40 + 7 + 30, 2)
    assert committed(check) == listed
    assert ledger(check)["drift"] is False  # exact: no recount was needed
    usage = check.usage()
    assert (usage.bytes, usage.files) == listed
    recount = check.reconcile_usage()
    assert (recount.bytes, recount.files) == listed


def test_an_overwrite_adds_its_size_and_a_delete_frees_a_file_but_no_bytes(org: Org) -> None:
    """Issue 19: on a versioned bucket what the organization pays for is every version."""
    store = org.store()
    store.save_bytes("k", b"x" * 10)
    store.save_bytes("k", b"y" * 20)
    store.flush()
    assert committed(store) == (30, 1)
    store.delete("k")
    store.flush()
    assert committed(store) == (30, 0)
    assert all_versions(store) == (30, 0)


def test_retention_prunes_what_a_save_pushes_out_and_frees_it_exactly(org: Org) -> None:
    """Issue 19: keep_versions=2 keeps the current version and two noncurrent ones; each
    save beyond frees the version it pushed out, exactly (no drift, no recount)."""
    store = org.store(keep_versions=2)
    for size in (11, 12, 13, 14, 15, 16):
        store.save_bytes("k", b"v" * size)
    store.flush()
    sizes = [version.size for version in store.history("k")]
    assert sizes == [16, 15, 14]
    assert committed(store) == (16 + 15 + 14, 1) == all_versions(store)
    assert ledger(store)["drift"] is False


def test_two_nodes_pruning_one_key_never_free_its_bytes_twice(org: Org) -> None:
    """Issue 19: two nodes save one key in turn with keep_versions=1, and both would prune
    the same old versions: each version's bytes are freed once (by the save that pushed it
    out), so the ledger equals the listing at every step, never below it."""
    a, b = org.store("a", keep_versions=1), org.store("b", keep_versions=1)
    for step in range(8):
        writer, other = (a, b) if step % 2 == 0 else (b, a)
        writer.save_bytes("k", bytes([65 + step]) * (10 + step))
        writer.flush()
        other.flush()
        assert committed(writer) == all_versions(writer), step
    assert [version.size for version in a.history("k")] == [17, 16]


def test_a_version_pruned_while_it_is_read_is_a_clear_missing_version(tmp_path: Path) -> None:
    """Issue 19, the hidden edge: node B reads an earlier version by id while node A's
    save prunes it (keep_versions=1): B gets KeyNotFoundError naming that version, and
    the quota still equals the listing."""
    org = _memory(tmp_path)
    assert org.bucket is not None
    a, b = org.store("a", keep_versions=1), org.store("b")
    a.save("k", "first")
    a.save("k", "second")
    first = b.history("k")[-1].version_id

    def prune_now(operation: str, full_key: str, stage: str) -> None:
        if operation == "GetObject" and stage == "before" and full_key.endswith("/k"):
            org.bucket.faults.remove(prune_now)  # type: ignore[union-attr]
            a.save("k", "third")  # pushes "first" out: pruned before the read is served

    org.bucket.faults.append(prune_now)
    with pytest.raises(KeyNotFoundError) as caught:
        b.read("k", version=first)
    assert first in str(caught.value)
    assert b.read("k") == "third"
    a.flush()
    assert committed(a) == all_versions(a)


def test_keep_versions_days_prunes_by_age_in_reconcile(tmp_path: Path) -> None:
    """Issue 19: versions noncurrent for longer than keep_versions_days are pruned by
    reconcile_usage() (every key), and the recount equals the listing."""
    clock = FakeClock()
    org = _memory(tmp_path, clock)
    store = org.store(keep_versions_days=1)
    store.save_bytes("old", b"a" * 10)
    store.save_bytes("old", b"b" * 20)  # "a" noncurrent from now
    clock.now += 2 * 86400
    store.save_bytes("young", b"c" * 30)
    store.save_bytes("young", b"d" * 40)  # "c" noncurrent for less than a day
    usage = store.reconcile_usage()
    assert [version.size for version in store.history("old")] == [20]
    assert [version.size for version in store.history("young")] == [40, 30]
    assert (usage.bytes, usage.files) == all_versions(store) == (90, 2)


def test_a_pruning_whose_answer_was_lost_frees_nothing_until_a_recount(tmp_path: Path) -> None:
    """Issue 19: the deletion of a pushed-out version lands but its answer is lost: its
    bytes are not counted as freed (an over-count, drift), and a recount repairs it."""
    org = _memory(tmp_path)
    assert org.bucket is not None
    store = org.store(keep_versions=0)
    store.save_bytes("k", b"x" * 10)

    def lose_answer(operation: str, full_key: str, stage: str) -> None:
        if operation == "DeleteObject" and stage == "after" and full_key.endswith("/k"):
            org.bucket.faults.remove(lose_answer)  # type: ignore[union-attr]
            raise OutcomeUnknownError("the answer was lost")

    org.bucket.faults.append(lose_answer)
    store.save_bytes("k", b"y" * 20)  # prunes "x": deleted, answer lost
    store.flush()
    assert all_versions(store) == (20, 1)
    assert committed(store) == (30, 1)  # never counted as freed
    assert ledger(store)["drift"] is True
    usage = store.reconcile_usage()
    assert (usage.bytes, usage.files) == (20, 1) == committed(store)


def test_a_suspended_bucket_never_under_counts_and_recounts(tmp_path: Path) -> None:
    """Issue 19: with versioning suspended a save replaces the key's "null" version (of a
    size the store does not know): counted as at most +size, drift marked; the version
    written while enabled stays. A recount gives the exact figure."""
    org = _memory(tmp_path)
    assert org.bucket is not None
    store = org.store()
    store.save_bytes("k", b"e" * 50)  # a real version id
    store._connection().set_versioning(False)  # suspended
    store._node.parts.quota.book.versioning.refresh()
    store.save_bytes("k", b"n" * 10)  # the null version
    store.save_bytes("k", b"m" * 12)  # replaces it
    store.flush()
    assert all_versions(store) == (50 + 12, 1)
    assert committed(store)[0] >= 50 + 12
    assert ledger(store)["drift"] is True
    usage = store.reconcile_usage()
    assert (usage.bytes, usage.files) == (62, 1) == committed(store)


def test_versioning_switched_on_behind_a_running_store_is_recounted(tmp_path: Path) -> None:
    """Issue 19, the hidden assumption: versioning turned on by another tool while a store
    runs. The store counted its overwrites as replacing bytes; at its next lease renewal
    it asks again, marks the ledger for a recount, counts from then on every version, and
    a recount gives the exact figure."""
    org = _memory(tmp_path)
    assert org.bucket is not None
    org.bucket.versioning = "off"
    store = org.store()
    store.save_bytes("k", b"a" * 10)
    store.flush()
    org.bucket.versioning = "enabled"  # behind the store
    store.save_bytes("k", b"b" * 10)  # counted as replacing: the 10 old bytes stay
    versioning = store._node.parts.quota.book.versioning
    versioning._asked = float("-inf")  # the re-probe interval has passed
    store.flush()
    assert versioning.known == "enabled"
    assert ledger(store)["drift"] is True  # a recount is due at the next quiet moment
    assert committed(store) == (10, 1) != all_versions(store)  # the window's under-count
    store.reconcile_usage()
    store.save_bytes("k", b"c" * 10)  # counted as keeping the old version now
    store.flush()
    assert committed(store) == (30, 1) == all_versions(store)


def ledger_versions(store: ObjectStore) -> list[VersionInfo]:
    """Every version of the usage ledger in the organization's records scope."""
    return key_versions(store._node.parts.quota.book.records, LEDGER)


def test_the_ledger_keeps_a_bounded_number_of_versions(org: Org) -> None:
    """Issue 19 follow-up: each conditional update of the ledger on a versioned bucket
    deletes the version it replaced, so after 12 saves, each settled in an update of its
    own, the records scope holds at most 2 versions of the ledger, not 12; the quota stays
    exact."""
    store = org.store()
    quota = store._node.parts.quota
    for step in range(12):
        store.save_bytes(f"k{step}", b"x" * (step + 1))
        quota.settle()
        assert len(ledger_versions(store)) <= 2, step
    assert committed(store) == all_versions(store) == (78, 12)
    assert ledger(store)["drift"] is False


def test_a_recount_sweeps_the_ledgers_old_versions(org: Org) -> None:
    """Issue 19 follow-up: versions of the ledger no update of this store replaced (left
    by a store before this was done, or by an update whose answer was lost) are deleted by
    the next recount, every one but the current ledger."""
    store = org.store()
    store.save_bytes("k", b"x" * 10)
    store.flush()
    records = store._node.parts.quota.book.records
    data = records.get(LEDGER)
    assert data is not None
    for _ in range(5):
        records.put(LEDGER, data.body)  # unconditional: no update of ours replaced these
    assert len(ledger_versions(store)) >= 6
    usage = store.reconcile_usage()
    assert [version.latest for version in ledger_versions(store)] == [True]
    assert (usage.bytes, usage.files) == (10, 1) == committed(store)


def test_tombstones_are_pruned_with_every_version_once_versions_are_kept(
    tmp_path: Path,
) -> None:
    """Issue 19 follow-up: tombstones written before versioning was turned on are pruned
    past the horizon with every version (a plain delete would keep each under a delete
    marker, for good), and so is one a plain delete already left so."""
    clock = FakeClock()
    org = _memory(tmp_path, clock)
    assert org.bucket is not None
    org.bucket.versioning = "off"
    store = org.store()
    for key in ("a", "b"):
        store.save_bytes(key, b"x")
        store.delete(key)  # unversioned: a tombstone each
    records = store._node.parts.quota.book.records
    org.bucket.versioning = "enabled"
    forgotten = next(iter(records.list("deleted/"))).key
    records.delete(forgotten)  # as before: its version stays, under a delete marker
    assert len(list(records.list_versions("deleted/"))) == 3
    clock.now += 8 * 86400  # past the replay horizon
    store.reconcile_usage()
    assert list(records.list_versions("deleted/")) == []


def test_an_unanswered_versioning_check_counts_the_upper_bound_and_asks_again(
    tmp_path: Path,
) -> None:
    """Issue 19 follow-up: the bucket does not answer GetBucketVersioning while writes go
    through: the state is not known yet (not cached), the write counts as on a suspended
    bucket, the upper bound of every state (drift), never as unversioned; the next write
    asks again, and a recount gives the exact figure."""
    org = _memory(tmp_path)
    assert org.bucket is not None
    org.bucket.versioning = "off"
    with org.store("a") as a:
        a.save_bytes("k", b"a" * 50)

    def unanswered(operation: str, full_key: str, stage: str) -> None:
        if operation == "GetBucketVersioning":
            raise StorageUnavailableError("the server did not answer")

    org.bucket.faults.append(unanswered)
    b = org.store("b")
    b.save_bytes("k", b"b" * 10)  # replaces 50 bytes; counted as keeping them, at most
    versioning = b._node.parts.quota.book.versioning
    assert versioning.known is None
    b.flush()
    assert committed(b) == (60, 1)
    assert ledger(b)["drift"] is True
    org.bucket.faults.remove(unanswered)
    b.save_bytes("k", b"c" * 5)  # asked again: unversioned, -5 exactly
    assert versioning.known == "off"
    usage = b.reconcile_usage()
    assert (usage.bytes, usage.files) == (5, 1) == committed(b)
