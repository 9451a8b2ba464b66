"""Issue 19: on a versioned bucket the crash replay judges a pending save by the key's
delete marker: a save is never replayed over a deletion made after it, whoever made the
deletion (another tool included, which leaves no tombstone), and no tombstone is written
there. The converse holds: a deletion made before the save was accepted does not stop it.
On the in-memory backend with a clock the test drives, and on a versioned SeaweedFS
bucket with its own clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket
from tests.conftest import store_settings
from tests.node.test_replay_deleted import Rig, _poll_server_clock, _replay
from tests.support.helpers import crash
from tests.support.model.envs import FakeClock

VERSIONED_BUCKET = "replay-versions-tests"


@pytest.fixture(params=["memory", pytest.param("seaweedfs", marks=pytest.mark.seaweedfs)])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    organization = f"org-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        clock = FakeClock()
        bucket = MemoryBucket(clock=clock)
        bucket.versioning = "enabled"
        base = ObjectStoreSettings(
            endpoint_url="http://127.0.0.1:9",
            access_key_id="k",
            secret_access_key="s",
            organization_id=organization,
            max_attempts=1,
        )

        def memory_later(store: ObjectStore) -> None:
            clock.now += 5.25

        made = Rig(
            lambda **o: base.model_copy(update=o),
            lambda: MemoryBackend(bucket),
            memory_later,
            tmp_path,
        )
    else:
        seaweed = request.getfixturevalue("seaweed")
        base = store_settings(
            tmp_path, seaweed, bucket=VERSIONED_BUCKET, organization_id=organization
        )
        with ObjectStore(base) as store:
            store._connection().create_bucket(versioned=True)
        made = Rig(
            lambda **o: base.model_copy(update=o), lambda: None, _poll_server_clock, tmp_path
        )
    yield made
    for store in made.opened:
        if not store._node.closed:
            store.close()


def _tombstones(store: ObjectStore) -> int:
    return len(store._node.parts.writer.committer.tombstones.recent())


def test_replay_never_recreates_a_key_whose_delete_marker_is_newer(rig: Rig) -> None:
    """Issue 19: A saves k over the object it knows and is killed; B deletes k (a delete
    marker, no tombstone); A's replay leaves k deleted and reports the save it dropped."""
    b = rig.node_b()
    b.save("k", "v0")
    a = rig.node_a()
    assert a.read("k") == "v0"
    a.save("k", "v1")
    crash(a)
    rig.later(b)
    b.delete("k")
    assert _tombstones(b) == 0  # the delete marker is the record
    replayed = _replay(rig)
    assert not b.contains_key("k")
    assert not replayed.contains_key("k")
    assert rig.dropped("k")
    assert [version.deleted for version in b.history("k")] == [True, False]


def test_a_deletion_by_another_tool_after_the_save_stops_the_replay(rig: Rig) -> None:
    """Issue 19: k was absent when A saved it; another tool (no tombstone: straight to the
    bucket) created and deleted k after; A's replay gives way to the delete marker."""
    a = rig.node_a()
    assert not a.contains_key("k")
    a.save("k", "v1")
    crash(a)
    b = rig.node_b()
    rig.later(b)
    bucket = b._node.parts.objects  # another tool: no committer, no tombstone
    bucket.put("k", b'"v2"')
    bucket.delete("k")
    replayed = _replay(rig)
    assert not replayed.contains_key("k")
    assert rig.dropped("k")


def test_replay_recreates_a_key_deleted_before_the_save_was_accepted(rig: Rig) -> None:
    """Issue 19, the converse: the delete marker is older than A's save (A still had the
    old object cached): the replay recreates k, the user's last operation wins."""
    b = rig.node_b()
    b.save("k", "v0")
    b.save("j", "v0")
    a = rig.node_a()
    assert a.read("k") == "v0"
    b.delete("k")
    b.delete("j")
    rig.later(b)
    a.save("k", "v1")  # over the object A believes is there
    a.save("j", "v1")  # A never looked: a create
    crash(a)
    replayed = _replay(rig)
    assert b.read("k") == "v1"
    assert b.read("j") == "v1"
    assert replayed.read("j") == "v1"
    assert not rig.dropped("k")
    assert not rig.dropped("j")
