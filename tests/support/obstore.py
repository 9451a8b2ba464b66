"""The obstore transport on the session's SeaweedFS server: its backend opened from
settings, the `settings` fixture (the bucket made and warmed up) and a fresh key `scope`
per test; tests/transport/conftest.py makes the fixtures available to the obstore tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from objectstore_s3.server.seaweedfs import SeaweedServer, resolve_endpoint
from objectstore_s3.settings import ObjectStoreSettings
from objectstore_s3.transport.obstore.backend import ObstoreBackend
from tests.conftest import store_settings


def open_obstore(settings: ObjectStoreSettings) -> ObstoreBackend:
    return ObstoreBackend(settings, resolve_endpoint(settings))


@pytest.fixture
def settings(seaweed: SeaweedServer, tmp_path: Path) -> Callable[..., ObjectStoreSettings]:
    """Settings on SeaweedFS through obstore; the bucket exists (warmed up: the first
    write to a bucket grows a volume, slower than a short timeout on a busy machine)."""

    def factory(**overrides: Any) -> ObjectStoreSettings:
        return store_settings(tmp_path, seaweed, transport="obstore", **overrides)

    backend = open_obstore(factory())
    backend.create_bucket()
    backend.put("warm-up", b"")
    return factory


@pytest.fixture
def scope() -> str:
    return f"t-{uuid.uuid4().hex[:10]}/"
