"""Bad environments: clear errors, chained from botocore, bounded in time, nothing lost."""

from __future__ import annotations

from pathlib import Path

import botocore.exceptions
import pytest

from objectstore_s3 import (
    BucketNotFoundError,
    KeyNotFoundError,
    ObjectStore,
    ObjectStoreSettings,
    StoragePermissionError,
    StorageUnavailableError,
)
from objectstore_s3.server.seaweedfs import SeaweedServer
from tests.conftest import StoreFactory, store_settings, unreachable_settings
from tests.support.helpers import refused_in_bounded_time, server_errors


def test_refused_connection_is_unavailable_in_bounded_time(tmp_path: Path) -> None:
    # Five operations with the default retries: seconds, not minutes.
    refused_in_bounded_time(
        unreachable_settings(tmp_path), botocore.exceptions.EndpointConnectionError, within=60
    )


def test_missing_bucket_is_named(make_store: StoreFactory, backend_name: str) -> None:
    store = make_store(bucket="no-such-bucket-here")
    for call in (lambda: store.save("k", "v"), lambda: store.read("k"), lambda: store.keys):
        with pytest.raises(BucketNotFoundError, match="no-such-bucket-here") as caught:
            call()
        assert "OBJECTSTORE_BUCKET" in str(caught.value)
        if backend_name != "memory":
            assert isinstance(caught.value.__cause__, server_errors(backend_name))


def test_failed_save_leaves_no_trace(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store()
    store.save("k", "old")

    def refuse(*args: object, **kwargs: object) -> str:
        raise StorageUnavailableError("the bucket refused")

    monkeypatch.setattr(store._node.parts.objects, "put", refuse)
    with pytest.raises(StorageUnavailableError):
        store.save("k", "new")
    with pytest.raises(StorageUnavailableError):
        store.save("fresh", "value")
    monkeypatch.undo()
    assert store.read("k") == "old"  # the cache does not claim the failed value
    assert not store.contains_key("fresh")
    store.clear()
    assert store.read("k") == "old"
    with pytest.raises(KeyNotFoundError):
        store.read("fresh")


@pytest.mark.seaweedfs
def test_wrong_credentials_are_a_permission_error(seaweed: SeaweedServer, tmp_path: Path) -> None:
    wrong = "definitely-wrong-secret-value"
    store = ObjectStore(store_settings(tmp_path, seaweed, secret_access_key=wrong))
    with pytest.raises(StoragePermissionError, match="denied") as caught:
        store.save("k", "v")
    assert wrong not in str(caught.value)
    assert isinstance(caught.value, PermissionError)


def test_closed_store_refuses_work(store: ObjectStore) -> None:
    store.close()
    with pytest.raises(Exception, match="closed"):
        store.save("k", "v")


def test_aws_endpoint_uses_aws_and_the_credential_chain(tmp_path: Path) -> None:
    from objectstore_s3.server.seaweedfs import resolve_endpoint
    from objectstore_s3.transport.boto3.backend import S3Backend

    settings = ObjectStoreSettings(
        endpoint_url="aws", region="eu-west-1", bucket="my-bucket", local_root=tmp_path
    )
    endpoint = resolve_endpoint(settings)
    assert endpoint.url is None  # boto3 picks AWS's own endpoint
    backend = S3Backend(settings, endpoint)
    assert "amazonaws.com" in backend.client.meta.endpoint_url
    assert not (tmp_path / ".server").exists()  # no embedded server was started
