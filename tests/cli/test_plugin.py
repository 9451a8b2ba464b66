"""The pytest plugin users get (`objectstore` fixture, registered by entry point)."""

from __future__ import annotations

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings


def test_objectstore_fixture_is_a_fresh_moto_store(
    objectstore: ObjectStore, objectstore_settings: ObjectStoreSettings
) -> None:
    assert objectstore.keys == []
    objectstore.save("123/model", b"weights")
    assert objectstore.read_bytes("123/model") == b"weights"
    with ObjectStore(objectstore_settings) as second:
        assert second.read_bytes("123/model") == b"weights"
    assert objectstore_settings.cache_dir.is_dir()


def test_each_test_gets_its_own_bucket(objectstore: ObjectStore) -> None:
    assert objectstore.keys == []  # nothing from the previous test


@pytest.fixture
def obstore_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBJECTSTORE_TRANSPORT", "obstore")


@pytest.mark.usefixtures("obstore_in_environment")
def test_fixture_stays_on_moto_whatever_the_transport_setting(
    objectstore: ObjectStore, objectstore_settings: ObjectStoreSettings
) -> None:
    assert objectstore_settings.transport == "boto3"  # moto intercepts botocore only
    objectstore.save("k", b"v")
    assert objectstore.read_bytes("k") == b"v"
