"""The pytest plugin users get (`objectstore` fixture, registered by entry point): here in
this suite's own process, on the default in-memory backend. Its runs in a user's separate
folder, with moto and without it, are in test_fresh_home.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings, PreconditionFailedError
from objectstore_s3.testing import backend_name


def test_objectstore_fixture_is_a_fresh_store_in_memory(
    objectstore: ObjectStore,
    objectstore_open: Callable[..., ObjectStore],
    objectstore_settings: ObjectStoreSettings,
    request: pytest.FixtureRequest,
) -> None:
    assert backend_name(request.config) == "memory"  # nothing to install
    assert objectstore.keys == []
    objectstore.save("123/model", b"weights")
    assert objectstore.read_bytes("123/model") == b"weights"
    second = objectstore_open(cache_dir=objectstore_settings.cache_dir.parent / "node-2")
    assert second.read_bytes("123/model") == b"weights"  # another node, the same bucket
    assert objectstore_settings.cache_dir.is_dir()


def test_conditional_writes_and_the_quota_work_in_memory(
    objectstore_open: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    store = objectstore_open()
    assert store.save_bytes("k", b"one", if_absent=True) is True
    with pytest.raises(PreconditionFailedError):
        store.save_bytes("k", b"two", if_absent=True)
    assert store.read_bytes("k") == b"one"
    other = objectstore_open(cache_dir=tmp_path / "other-node", storage_file_count=1)
    assert other.save("k2", "over the quota") is False  # the limit holds across nodes


def test_each_test_gets_its_own_bucket(objectstore: ObjectStore) -> None:
    assert objectstore.keys == []  # nothing from the previous test


def test_settings_alone_reach_no_server_in_memory(
    objectstore_settings: ObjectStoreSettings,
) -> None:
    """On the in-memory backend the settings point nowhere: a store opened from them alone
    cannot save into a real server by mistake."""
    assert objectstore_settings.endpoint_url == "http://127.0.0.1:1"


@pytest.fixture
def obstore_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBJECTSTORE_TRANSPORT", "obstore")


@pytest.mark.usefixtures("obstore_in_environment")
def test_fixture_keeps_boto3_whatever_the_transport_setting(
    objectstore: ObjectStore, objectstore_settings: ObjectStoreSettings
) -> None:
    assert objectstore_settings.transport == "boto3"  # moto intercepts botocore only
    objectstore.save("k", b"v")
    assert objectstore.read_bytes("k") == b"v"
