"""A console on the in-memory backend, for the route and security tests (Starlette's
TestClient) and the browser test (a real uvicorn server)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from objectstore_s3 import ObjectStore, ObjectStoreSettings
from objectstore_s3.transport.memory import MemoryBackend
from objectstore_s3.ui.app import create_app
from objectstore_s3.ui.security import Guard

PORT = 8123  # what the test client's Host header says; nothing listens on it
SECRET = "wJalrXUtnFEMI-console-test-secret"
Console = Callable[..., tuple[TestClient, Guard, ObjectStore]]


def console_settings(tmp_path: Path, **overrides: Any) -> ObjectStoreSettings:
    values: dict[str, Any] = {
        "organization_id": "org-console",
        "bucket": "console-tests",
        "endpoint_url": "http://user:hunter2@127.0.0.1:9",  # never reached: memory backend
        "access_key_id": "AKIA-console-test",
        "secret_access_key": SECRET,
        "cache_dir": tmp_path / "cache",
        "local_root": tmp_path / "local",
        **overrides,
    }
    return ObjectStoreSettings(**values)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """Opens a console (settings overrides, create_app options): a client that is not
    signed in yet, the console's guard and its store."""
    stores: list[ObjectStore] = []

    def open_console(
        *, read_only: bool = False, page_size: int = 200, **overrides: Any
    ) -> tuple[TestClient, Guard, ObjectStore]:
        store = ObjectStore(console_settings(tmp_path, **overrides), backend=MemoryBackend())
        stores.append(store)
        guard = Guard(PORT)
        app = create_app(store, guard, read_only=read_only, page_size=page_size)
        client = TestClient(app, base_url=f"http://127.0.0.1:{PORT}", follow_redirects=False)
        return client, guard, store

    yield open_console
    for store in stores:
        store.close()


def signed_in(client: TestClient, guard: Guard) -> TestClient:
    response = client.get("/", params={"token": guard.token})
    assert response.status_code == 303
    return client
