"""A pytest plugin for users' own test suites: an `ObjectStore` per test, nothing shared.

Registered through the `pytest11` entry point, so installing objectstore-s3 makes these
fixtures available, with nothing else installed:

    def test_my_algorithm_saves_its_model(objectstore):
        objectstore.save("123/model", b"weights")
        assert objectstore.read_bytes("123/model") == b"weights"

The stores run on the in-memory backend (S3's semantics, conditional writes and the quota
included). `objectstore_backend = moto` in the pytest ini (or `--objectstore-backend moto`)
runs them on moto's in-process S3 mock instead (the `testing` extra); without moto, that
is an error before any test runs, never a skip that would leave a suite green untested.
`objectstore_open(**changes)` opens another store on the same data (a second node: pass
its own `cache_dir`); `objectstore_settings` is the settings the stores are made with.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .settings import ObjectStoreSettings
from .store import ObjectStore
from .transport.memory import MemoryBackend, MemoryBucket

__all__ = ["objectstore", "objectstore_open", "objectstore_settings"]

BACKENDS = ("memory", "moto")
MOTO_MISSING = (
    "objectstore_backend = moto needs moto, which is not installed: "
    "pip install 'objectstore-s3[testing]' (or drop the option: the default in-memory "
    "backend needs nothing)"
)
_MOTO_ENDPOINT = "https://s3.amazonaws.com"
# On the in-memory backend the settings name no server: a store opened from them alone
# (instead of through objectstore_open) fails at once (connection refused) rather than
# reaching a real server.
_NOWHERE = "http://127.0.0.1:1"


def pytest_addoption(parser: pytest.Parser) -> None:
    help_text = "the objectstore fixture's backend: memory (default) or moto"
    parser.addini("objectstore_backend", help_text, default="memory")
    parser.getgroup("objectstore-s3").addoption(
        "--objectstore-backend", choices=BACKENDS, default=None, help=help_text
    )


def backend_name(config: pytest.Config) -> str:
    """The backend chosen by the command line, else the ini option, else memory."""
    return str(config.getoption("objectstore_backend") or config.getini("objectstore_backend"))


def pytest_configure(config: pytest.Config) -> None:
    name = backend_name(config).strip()
    if name not in BACKENDS:
        raise pytest.UsageError(f"objectstore_backend = {name}: must be memory or moto")
    if name == "moto":
        try:
            import moto  # noqa: F401
        except ImportError:
            raise pytest.UsageError(MOTO_MISSING) from None


@pytest.fixture
def objectstore_settings(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[ObjectStoreSettings]:
    """The settings of the test's stores: a fresh bucket, temporary cache and local folders."""
    values: dict[str, Any] = {
        "bucket": f"test-{uuid.uuid4().hex[:12]}",
        "organization_id": "test-org",
        "cache_dir": tmp_path / "objectstore-cache",
        "local_root": tmp_path / "objectstore-local",
        "max_attempts": 1,
        # moto intercepts botocore only: OBJECTSTORE_TRANSPORT=obstore in the user's
        # environment must not send these stores to the network.
        "transport": "boto3",
    }
    if backend_name(request.config).strip() == "memory":
        yield ObjectStoreSettings(endpoint_url=_NOWHERE, **values)
        return
    from moto import mock_aws

    with mock_aws():
        settings = ObjectStoreSettings(
            endpoint_url=_MOTO_ENDPOINT,
            access_key_id="testing",
            secret_access_key="testing",  # noqa: S106  (moto accepts anything)
            **values,
        )
        with ObjectStore(settings) as store:
            store.create_bucket()
        yield settings


@pytest.fixture
def objectstore_open(
    objectstore_settings: ObjectStoreSettings,
) -> Iterator[Callable[..., ObjectStore]]:
    """Opens a store on the test's data, with settings changed as given (another node:
    `cache_dir=...`); every store it opened is closed after the test."""
    memory = None
    if objectstore_settings.endpoint_url == _NOWHERE:
        memory = MemoryBucket(name=objectstore_settings.bucket)
    stores: list[ObjectStore] = []

    def open_store(**changes: Any) -> ObjectStore:
        settings = ObjectStoreSettings(**{**objectstore_settings.model_dump(), **changes})
        backend = None if memory is None else MemoryBackend(memory)  # one node each
        stores.append(ObjectStore(settings, backend=backend))
        return stores[-1]

    yield open_store
    for store in reversed(stores):
        store.close()


@pytest.fixture
def objectstore(objectstore_open: Callable[..., ObjectStore]) -> ObjectStore:
    """An `ObjectStore` on a fresh bucket (in memory, or moto); closed after the test."""
    return objectstore_open()
