"""A pytest plugin for users' own test suites: an `ObjectStore` on moto, nothing shared.

Registered through the `pytest11` entry point, so installing objectstore-s3 with moto
makes these fixtures available:

    def test_my_algorithm_saves_its_model(objectstore):
        objectstore.save("123/model", b"weights")
        assert objectstore.read_bytes("123/model") == b"weights"

`objectstore_settings` is the settings the store was made with (a fresh bucket, and
temporary cache and local folders), for tests that open a second store on the same data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .settings import ObjectStoreSettings
from .store import ObjectStore

__all__ = ["objectstore", "objectstore_settings"]

_MOTO_ENDPOINT = "https://s3.amazonaws.com"


@pytest.fixture
def objectstore_settings(tmp_path: Path) -> Iterator[ObjectStoreSettings]:
    """Settings for a store on an in-process moto S3 with its own bucket and folders."""
    try:
        from moto import mock_aws
    except ImportError:  # pragma: no cover - depends on the user's environment
        pytest.skip("the objectstore fixture needs moto: pip install 'moto[s3]'")
    with mock_aws():
        settings = ObjectStoreSettings(
            endpoint_url=_MOTO_ENDPOINT,
            bucket=f"test-{uuid.uuid4().hex[:12]}",
            access_key_id="testing",
            secret_access_key="testing",  # noqa: S106  (moto accepts anything)
            organization_id="test-org",
            cache_dir=tmp_path / "cache",
            local_root=tmp_path / "local",
            max_attempts=1,
            # moto intercepts botocore only: OBJECTSTORE_TRANSPORT=obstore in the user's
            # environment must not send these stores to the network.
            transport="boto3",
        )
        with ObjectStore(settings) as store:
            store.create_bucket()
        yield settings


@pytest.fixture
def objectstore(objectstore_settings: ObjectStoreSettings) -> Iterator[ObjectStore]:
    """An `ObjectStore` on moto with a fresh bucket; closed after the test."""
    with ObjectStore(objectstore_settings) as store:
        yield store
