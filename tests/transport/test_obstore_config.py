"""The obstore transport's configuration and errors: failures in bounded time (a refused
port, a server that never answers), credentials and a missing bucket, the AWS endpoint,
and the missing extra. (Its error table is unit/test_obstore_errors.py.)
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import obstore.exceptions as oe
import pytest

from objectstore_s3 import (
    BucketNotFoundError,
    ObjectStore,
    ObjectStoreError,
    StoragePermissionError,
    StorageUnavailableError,
)
from objectstore_s3.errors import OutcomeUnknownError
from objectstore_s3.server.seaweedfs import SeaweedServer
from objectstore_s3.settings import ObjectStoreSettings
from objectstore_s3.transport.base import content_etag
from tests.conftest import store_settings, unreachable_settings
from tests.support.helpers import refused_in_bounded_time
from tests.support.obstore import open_obstore

MiB = 1024 * 1024
seaweedfs = pytest.mark.seaweedfs


# -- failures in bounded time --------------------------------------------------------------


def test_refused_connection_is_unavailable_in_bounded_time(tmp_path: Path) -> None:
    settings = unreachable_settings(tmp_path, transport="obstore")
    refused_in_bounded_time(settings, oe.GenericError, within=30, says="connection refused")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def test_a_server_that_never_answers_times_out_per_attempt(
    tmp_path: Path, silent_port: int
) -> None:
    settings = unreachable_settings(
        tmp_path,
        endpoint_url=f"http://127.0.0.1:{silent_port}",
        transport="obstore",
        read_timeout_seconds=1,
        max_attempts=2,
    )
    backend = open_obstore(settings)
    started = time.monotonic()
    with pytest.raises(
        StorageUnavailableError, match=r"after 2 attempt\(s\) \(timed out\)"
    ) as caught:
        backend.head("k")
    assert 2 <= time.monotonic() - started < 6  # two attempts of one read timeout each
    assert "OBJECTSTORE_READ_TIMEOUT_SECONDS" in str(caught.value)
    # A conditional write that was sent and never answered: the outcome is unknown.
    with pytest.raises(OutcomeUnknownError) as unknown:
        backend.put("k", b"v", if_none_match="*")
    assert unknown.value.expected_etag == content_etag(b"v")


@seaweedfs
def test_wrong_credentials_are_a_permission_error_without_the_secret(
    seaweed: SeaweedServer, tmp_path: Path
) -> None:
    wrong = "definitely-wrong-secret-value"
    settings = store_settings(tmp_path, seaweed, transport="obstore", secret_access_key=wrong)
    store = ObjectStore(settings)
    for call in (lambda: store.save("k", "v"), lambda: store.read("k"), lambda: store.keys):
        with pytest.raises(StoragePermissionError, match="denied") as caught:
            call()
        assert wrong not in str(caught.value)
        assert wrong not in repr(caught.value.__cause__)
        assert isinstance(caught.value, PermissionError)


@seaweedfs
def test_missing_bucket_is_named(settings: Callable[..., ObjectStoreSettings]) -> None:
    backend = open_obstore(settings(bucket="no-such-bucket-obstore"))
    for call in (
        lambda: backend.put("k", b"v"),
        lambda: backend.get("k"),
        lambda: list(backend.list()),
    ):
        with pytest.raises(BucketNotFoundError, match="no-such-bucket-obstore") as caught:
            call()
        assert "OBJECTSTORE_BUCKET" in str(caught.value)


@seaweedfs
def test_explicit_keys_ignore_a_session_token_in_the_environment(
    seaweed: SeaweedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # obstore would add AWS_SESSION_TOKEN to explicit keys (and SeaweedFS would deny).
    monkeypatch.setenv("AWS_SESSION_TOKEN", "a-token-of-another-account")
    backend = open_obstore(store_settings(tmp_path, seaweed, transport="obstore"))
    backend.create_bucket()
    backend.put("token-test", b"v")
    assert backend.head("token-test") is not None


def test_aws_endpoint_uses_virtual_hosting_and_the_credential_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")  # found by boto3's chain
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
    settings = ObjectStoreSettings(
        endpoint_url="aws", region="eu-west-1", bucket="my-bucket", local_root=tmp_path,
        transport="obstore",
    )  # fmt: skip
    config = open_obstore(settings)._store.config
    assert "endpoint" not in config  # obstore picks AWS's own endpoint
    assert (config["region"], config["virtual_hosted_style_request"]) == ("eu-west-1", "true")
    dotted = open_obstore(settings.model_copy(update={"bucket": "my.dotted.bucket"}))
    assert dotted._store.config["virtual_hosted_style_request"] == "false"  # TLS names
    assert not (tmp_path / ".server").exists()  # no embedded server was started


def test_no_credentials_at_all_is_a_permission_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role here
    settings = ObjectStoreSettings(endpoint_url="aws", local_root=tmp_path, transport="obstore")
    with pytest.raises(StoragePermissionError, match="OBJECTSTORE_ACCESS_KEY_ID"):
        ObjectStore(settings).contains_key("k")


# -- the missing extra ---------------------------------------------------------------------


def test_missing_extra_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "obstore" or name.startswith(("obstore.", "objectstore_s3.transport.obstore")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "obstore", None)  # as if not installed
    store = ObjectStore(unreachable_settings(tmp_path, transport="obstore"))
    with pytest.raises(ObjectStoreError, match=r"pip install 'objectstore-s3\[fast\]'") as caught:
        store.contains_key("k")
    assert "OBJECTSTORE_TRANSPORT" in str(caught.value)


def test_transport_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBJECTSTORE_TRANSPORT", "obstore")
    assert ObjectStoreSettings().transport == "obstore"
    monkeypatch.setenv("OBJECTSTORE_TRANSPORT", "curl")
    with pytest.raises(ValueError, match="transport"):
        ObjectStoreSettings()
