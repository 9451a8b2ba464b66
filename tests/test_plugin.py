"""The pytest plugin users get (`objectstore` fixture, registered by entry point)."""

from __future__ import annotations

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
