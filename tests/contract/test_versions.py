"""Versions at the store's level (issue 19), on every backend that has them: a key's
history, reads and read-only files of an earlier version, restores (undeleting too), and
server-side copies. On a bucket with versioning on (memory, moto, SeaweedFS: a versioned
bucket of its own); without versioning (an unversioned memory bucket, and rclone, which
has none), `history` is the current object only and `restore` says how to turn it on.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from objectstore_s3 import (
    KeyNotFoundError,
    KeyVersion,
    ObjectStore,
    ObjectStoreError,
    ObjectStoreSettings,
    VersioningNotEnabledError,
)
from objectstore_s3.transport.memory import MemoryBucket
from tests.conftest import StoreFactory

VERSIONED_BUCKET = "versions-tests"  # the S3 servers' versioned bucket (shared, per-test orgs)
VERSIONED = pytest.mark.backends(
    "memory", "moto", "seaweedfs", "seaweedfs-obstore", "seaweedfs-cluster"
)
UNVERSIONED = pytest.mark.backends("memory", "rclone")


@pytest.fixture
def versioned(
    make_store: StoreFactory,
    make_settings: Callable[..., ObjectStoreSettings],
    backend_name: str,
    memory_bucket: MemoryBucket,
) -> StoreFactory:
    """Opens stores on a bucket with versioning on."""
    if backend_name == "memory":
        memory_bucket.versioning = "enabled"
        return make_store
    from objectstore_s3.node.connect import open_backend

    root = open_backend(make_settings(bucket=VERSIONED_BUCKET))
    try:
        root.create_bucket(versioned=True)
    finally:
        root.close()

    def factory(**overrides: Any) -> ObjectStore:
        return make_store(**{"bucket": VERSIONED_BUCKET, **overrides})

    return factory


def _saved(store: ObjectStore, key: str, *values: str) -> list[KeyVersion]:
    for value in values:
        store.save(key, value)
    return store.history(key)


def _deleted(store: ObjectStore, key: str) -> KeyVersion:
    """Save the key, delete it: its delete marker."""
    store.save(key, "v")
    store.delete(key)
    return store.history(key)[0]


# -- history and reads of earlier versions -------------------------------------------------


@VERSIONED
def test_history_lists_every_version_newest_first(versioned: StoreFactory) -> None:
    store = versioned()
    versions = _saved(store, "models/alpha", "one", "three", "five!")
    assert [v.size for v in versions] == [5, 5, 3]
    assert [v.is_current for v in versions] == [True, False, False]
    assert not any(v.deleted for v in versions)
    assert len({v.version_id for v in versions}) == 3
    assert all(v.key == "models/alpha" for v in versions)
    assert versions[0].etag == store.stat("models/alpha").etag
    times = [v.last_modified for v in versions]
    assert all(t is not None for t in times)
    assert times == sorted(times, reverse=True)  # type: ignore[type-var]
    # Keys it is a prefix of are not its versions.
    store.save("models/alpha/notes", "x")
    store.save("models/alphabet", "y")
    assert [v.version_id for v in store.history("models/alpha")] == [v.version_id for v in versions]
    assert store.history("models/never") == []


@VERSIONED
def test_every_read_takes_an_earlier_version(versioned: StoreFactory) -> None:
    store = versioned()
    store.save_json("cfg", {"lookback": 20})
    first = store.history("cfg")[0].version_id
    store.save_json("cfg", {"lookback": 5})
    assert store.read_json("cfg", version=first) == {"lookback": 20}
    assert store.read_json("cfg") == {"lookback": 5}
    assert store.read("cfg", version=first) == '{"lookback":20}'
    assert store.read_string("cfg", version=first) == '{"lookback":20}'
    assert store.read_bytes("cfg", version=first) == b'{"lookback":20}'
    store.save_xml("x", {"a": "1"})
    old = store.history("x")[0].version_id
    store.save_xml("x", {"a": "2"})
    element = store.read_xml("x", version=old)
    assert isinstance(element, ET.Element)
    assert element.findtext("a") == "1"


@VERSIONED
def test_a_version_that_does_not_exist_is_key_not_found(versioned: StoreFactory) -> None:
    store = versioned()
    marker = _deleted(store, "k")
    assert (marker.deleted, marker.etag, marker.is_current) == (True, None, True)
    for version in (marker.version_id, "0123456789abcdef"):
        with pytest.raises(KeyNotFoundError) as caught:
            store.read_bytes("k", version=version)
        assert isinstance(caught.value, ObjectStoreError)


@VERSIONED
def test_a_versions_file_is_read_only_beside_the_keys_own_and_never_synced(
    versioned: StoreFactory,
) -> None:
    store = versioned()
    store.save_bytes("models/m.bin", b"good model")
    good = store.history("models/m.bin")[0].version_id
    store.save_bytes("models/m.bin", b"bad")
    path = Path(store.get_file_path("models/m.bin", version=good))
    assert path.read_bytes() == b"good model"
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    own = Path(store.get_file_path("models/m.bin"))
    assert own.read_bytes() == b"bad"
    assert path.parent.parent == own.parent
    assert path != own
    assert not path.is_relative_to(own)
    store.flush()
    assert store.keys == ["models/m.bin"]  # the version's file is no key
    assert len(store.history("models/m.bin")) == 2  # nor was anything uploaded
    assert store.get_file_path("models/m.bin", version=good) == str(path)


# -- restore -------------------------------------------------------------------------------


@VERSIONED
def test_restore_makes_an_earlier_version_current(versioned: StoreFactory) -> None:
    store = versioned()
    versions = _saved(store, "models/alpha", "good", "bad!")
    restored = store.restore("models/alpha", versions[1].version_id)
    assert store.read("models/alpha") == "good"
    assert restored.etag == versions[1].etag == store.stat("models/alpha").etag
    after = store.history("models/alpha")
    assert len(after) == 3
    assert (after[0].is_current, after[0].etag) == (True, versions[1].etag)
    other = versioned(cache_dir=store.settings.cache_dir.parent / "other")
    assert other.read("models/alpha") == "good"  # another node sees it


@VERSIONED
def test_restoring_the_current_version_writes_nothing(versioned: StoreFactory) -> None:
    store = versioned()
    versions = _saved(store, "k", "a", "b")
    store.restore("k", versions[0].version_id)
    assert store.history("k") == versions


@VERSIONED
def test_restore_undeletes_a_deleted_key(versioned: StoreFactory) -> None:
    store = versioned()
    store.save_json("registry", {"deployed": "m1"})
    store.delete("registry")
    assert "registry" not in store
    history = store.history("registry")
    assert [v.deleted for v in history] == [True, False]
    store.restore("registry", history[1].version_id)
    assert store.read_json("registry") == {"deployed": "m1"}
    assert "registry" in store.keys


@VERSIONED
def test_restoring_a_deletion_is_a_clear_error(versioned: StoreFactory) -> None:
    store = versioned()
    marker = _deleted(store, "k")
    with pytest.raises(KeyNotFoundError, match="deletion") as caught:
        store.restore("k", marker.version_id)
    assert "history" in str(caught.value)
    with pytest.raises(KeyNotFoundError, match="does not exist"):
        store.restore("k", "no-such-version")
    assert "k" not in store


@VERSIONED
def test_copy_is_server_side_and_keeps_the_source(versioned: StoreFactory) -> None:
    store = versioned()
    store.save("models/prod", "weights-v7")
    stat_ = store.copy("models/prod", "models/backup")
    assert store.read("models/backup") == "weights-v7"
    assert stat_.etag == store.stat("models/backup").etag
    assert store.read("models/prod") == "weights-v7"
    with pytest.raises(KeyNotFoundError):
        store.copy("models/missing", "models/x")


# -- without versioning --------------------------------------------------------------------


@UNVERSIONED
def test_without_versioning_history_is_the_current_object(make_store: StoreFactory) -> None:
    store = make_store()
    store.save("k", "one")
    store.save("k", "two")
    (only,) = store.history("k")
    assert (only.version_id, only.is_current, only.deleted) == ("null", True, False)
    assert (only.etag, only.size) == (store.stat("k").etag, 3)
    store.delete("k")
    assert store.history("k") == []


@UNVERSIONED
def test_without_versioning_restore_says_how_to_turn_it_on(make_store: StoreFactory) -> None:
    store = make_store()
    store.save("k", "one")
    with pytest.raises(VersioningNotEnabledError) as caught:
        store.restore("k", "null")
    assert isinstance(caught.value, ObjectStoreError)
    assert "objectstore-s3 bucket versioning on" in str(caught.value)
    assert "put-bucket-versioning" in str(caught.value)
    assert store.read("k") == "one"


@UNVERSIONED
def test_without_versioning_copy_works(make_store: StoreFactory) -> None:
    store = make_store()
    store.save("a", "value")
    store.copy("a", "b")
    assert store.read("b") == "value"
    assert sorted(store.keys) == ["a", "b"]
    assert os.path.basename(store.get_file_path("b")) == "b"
