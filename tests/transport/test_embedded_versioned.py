"""The embedded server's default bucket is versioned from the start (an overwritten or
deleted value can be restored), and a bucket whose owner suspended versioning stays so
when the next store opens it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStoreSettings
from objectstore_s3.node.connect import open_backend
from objectstore_s3.server.seaweedfs import stop_local_server

pytestmark = pytest.mark.seaweedfs


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[ObjectStoreSettings]:
    """endpoint_url=local with a server_dir of this test; its server is stopped after."""
    values = ObjectStoreSettings(
        endpoint_url="local",
        server_dir=tmp_path / "server",
        cache_dir=tmp_path / "cache",
        local_root=tmp_path / "local",
    )
    yield values
    stop_local_server(values)  # by PID, and only this folder's own server


def test_the_embedded_bucket_is_versioned_and_a_suspension_is_kept(
    settings: ObjectStoreSettings,
) -> None:
    backend = open_backend(settings)
    try:
        assert backend.versioning() == "enabled"
        first = backend.put("k", b"first")
        backend.put("k", b"second")
        old = backend.get("k", version_id=first.version_id)
        assert old is not None
        assert old.body == b"first"
        backend.set_versioning(False)
    finally:
        backend.close()
    again = open_backend(settings)  # the next store on the same server
    try:
        assert again.versioning() == "suspended"
    finally:
        again.close()
