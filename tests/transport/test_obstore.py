"""What is particular to the obstore transport (the contract suite runs on it too, as
"seaweedfs-obstore"): its error table, bounded failures, answers lost by a fault proxy,
the requests that go through boto3, the server's clock, and the missing extra.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import obstore.exceptions as oe
import pytest

from objectstore_s3 import (
    BucketNotFoundError,
    ObjectStore,
    ObjectStoreError,
    StoragePermissionError,
    StorageUnavailableError,
)
from objectstore_s3.errors import (
    OutcomeUnknownError,
    PreconditionFailedError,
)
from objectstore_s3.server.seaweedfs import SeaweedServer, resolve_endpoint
from objectstore_s3.settings import ObjectStoreSettings
from objectstore_s3.transport.base import content_etag
from objectstore_s3.transport.boto3.backend import S3Backend
from objectstore_s3.transport.capability import probe
from objectstore_s3.transport.obstore.backend import ObstoreBackend
from objectstore_s3.transport.transfer import download_parts
from tests.conftest import store_settings, unreachable_settings
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.helpers import refused_in_bounded_time
from tests.support.worker import ROOT, settings_json

MiB = 1024 * 1024
seaweedfs = pytest.mark.seaweedfs


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


# -- answers lost on the way back (fault proxy) --------------------------------------------


@seaweedfs
def test_lost_answer_of_a_create_is_resolved_not_reported_as_412(
    fault_proxy: FaultProxy, settings: Callable[..., ObjectStoreSettings], scope: str
) -> None:
    """The PUT lands, its answer is lost, the retry gets 412: a HEAD shows it landed.
    (obstore's own retries would have raised AlreadyExistsError here.)"""
    backend = open_obstore(settings(endpoint_url=fault_proxy.url)).scoped(scope)
    rule = fault_proxy.add_rule(Fault.reset_after(), method="PUT", times=1)
    info = backend.put("k", b"landed", if_none_match="*")
    assert rule.applied == 1
    assert [r.status for r in fault_proxy.requests if r.method == "PUT"] == [200, 412]
    assert info.etag == content_etag(b"landed")
    data = backend.get("k")
    assert data is not None
    assert data.body == b"landed"


@seaweedfs
def test_unanswered_conditional_write_is_outcome_unknown(
    fault_proxy: FaultProxy, settings: Callable[..., ObjectStoreSettings], scope: str
) -> None:
    backend = open_obstore(settings(endpoint_url=fault_proxy.url)).scoped(scope)
    backend.put("k", b"old")
    old = backend.head("k")
    assert old is not None
    fault_proxy.add_rule(Fault.reset_after(), method="PUT")
    with pytest.raises(OutcomeUnknownError, match="may or may not") as caught:
        backend.put("k", b"new", if_match=old.etag)
    assert caught.value.expected_etag == content_etag(b"new")


@seaweedfs
def test_cut_body_is_retried_never_returned(
    fault_proxy: FaultProxy, settings: Callable[..., ObjectStoreSettings], scope: str
) -> None:
    backend = open_obstore(settings(endpoint_url=fault_proxy.url)).scoped(scope)
    data = bytes(range(256)) * 400
    backend.put("k", data)
    fault_proxy.add_rule(Fault.cut_response(1000), method="GET", times=1)
    got = backend.get("k")
    assert got is not None
    assert got.body == data
    assert [r.fault for r in fault_proxy.requests if r.method == "GET"] == ["cut_response", None]


@seaweedfs
def test_throttled_requests_are_retried(
    fault_proxy: FaultProxy, settings: Callable[..., ObjectStoreSettings], scope: str
) -> None:
    backend = open_obstore(settings(endpoint_url=fault_proxy.url, max_attempts=3)).scoped(scope)
    fault_proxy.add_rule(Fault.slow_down(), method="PUT", times=2)
    backend.put("k", b"v", if_none_match="*")
    fault_proxy.add_rule(Fault.slow_down(), method="PUT")
    with pytest.raises(StorageUnavailableError, match="SlowDown"):
        backend.put("k2", b"v")


# -- what goes through boto3 ---------------------------------------------------------------


@seaweedfs
def test_conditional_deletes_and_puts_are_honoured(
    settings: Callable[..., ObjectStoreSettings], monkeypatch: pytest.MonkeyPatch, scope: str
) -> None:
    import objectstore_s3.transport.capability as capability

    monkeypatch.setattr(capability, "_probed", {})  # not the boto3 transport's finding
    backend = open_obstore(settings()).scoped(scope)
    found = probe(backend)
    assert (found.conditional_put, found.conditional_delete) == (True, True)
    info = backend.put("k", b"v")
    with pytest.raises(PreconditionFailedError):
        backend.delete("k", if_match=content_etag(b"other"))
    backend.delete("k", if_match=info.etag)
    assert backend.head("k") is None


@seaweedfs
def test_which_requests_go_through_which_client(
    settings: Callable[..., ObjectStoreSettings], scope: str
) -> None:
    backend = open_obstore(settings()).scoped(scope)
    seen: list[tuple[str, str | None]] = []
    backend.on_request(lambda operation, key: seen.append((operation, key)))
    info = backend.put("k", b"v", if_none_match="*")
    backend.head("k")
    backend.get("k", if_none_match=info.etag)
    list(backend.list())
    assert backend._c._boto is None  # obstore only, so far
    backend.delete("k", if_match=info.etag)  # boto3: obstore cannot condition a delete
    assert backend._c._boto is not None
    assert seen == [
        ("PutObject", "k"),
        ("HeadObject", "k"),
        ("GetObject", "k"),
        ("ListObjectsV2", None),
        ("DeleteObject", "k"),
    ]


@seaweedfs
def test_server_clock_is_calibrated_by_one_head(
    settings: Callable[..., ObjectStoreSettings],
) -> None:
    backend = open_obstore(settings())
    seen: list[str] = []
    backend.on_request(lambda operation, key: seen.append(operation))
    assert backend._c.known_time() is None  # obstore answers carry no Date
    low, high = backend.server_time() or (0.0, 0.0)
    assert seen == ["HeadObject"]
    assert low - 2 <= time.time() <= high + 2  # the server runs on this machine
    assert high - low <= 1.5
    assert backend.server_time() is not None
    assert seen == ["HeadObject"]  # no request once known


@seaweedfs
def test_large_files_move_in_parts_with_conditions(
    settings: Callable[..., ObjectStoreSettings], tmp_path: Path, scope: str
) -> None:
    five = 5 * MiB
    config = settings(multipart_threshold_bytes=five, multipart_chunksize_bytes=five)
    backend = open_obstore(config).scoped(scope)
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * (11 * MiB // 256))
    info = backend.upload("big", source, if_none_match="*")
    assert info.etag.endswith('-3"')  # multipart: 5 + 5 + 1 MiB
    with pytest.raises(PreconditionFailedError):
        backend.upload("big", source, if_none_match="*")
    with pytest.raises(PreconditionFailedError, match="changed"):
        backend.upload("big", source, if_match=info.etag, unchanged=lambda: False)
    assert list(backend.stale_uploads(time.time() + 60)) == []  # every failure aborted
    ranges: list[str] = []
    backend.on_request(lambda operation, key: ranges.append(operation))
    target = tmp_path / "copy.bin"
    assert backend.download("big", target).etag == info.etag
    assert target.read_bytes() == source.read_bytes()
    assert target.stat().st_mode & 0o777 == 0o600
    assert ranges == ["HeadObject"] + ["GetObject"] * 3


@seaweedfs
def test_a_part_cut_mid_download_is_fetched_again(
    fault_proxy: FaultProxy,
    settings: Callable[..., ObjectStoreSettings],
    tmp_path: Path,
    scope: str,
) -> None:
    five = 5 * MiB
    config = settings(
        endpoint_url=fault_proxy.url, multipart_threshold_bytes=five, multipart_chunksize_bytes=five
    )
    backend = open_obstore(config).scoped(scope)
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * (11 * MiB // 256))
    old = backend.upload("big", source)
    ranged = lambda headers: "range" in headers  # noqa: E731
    fault_proxy.add_rule(Fault.cut_response(2 * MiB), method="GET", header=ranged, times=1)
    target = tmp_path / "copy.bin"
    backend.download("big", target)
    assert target.read_bytes() == source.read_bytes()
    gets = [r for r in fault_proxy.requests if r.method == "GET" and "range" in r.headers]
    assert len(gets) == 4  # three parts, one of them twice
    # A part of another version is refused (If-Match), never stitched in.
    backend.put("big", b"a new, small version")
    with pytest.raises(PreconditionFailedError):
        download_parts(backend, old, target, chunk=five, pool=backend._c.pool)


@seaweedfs
def test_a_listing_cut_on_its_second_page_starts_over_without_duplicates(
    fault_proxy: FaultProxy, settings: Callable[..., ObjectStoreSettings], scope: str
) -> None:
    backend = open_obstore(settings(endpoint_url=fault_proxy.url)).scoped(scope)
    names = [f"k{index:04d}" for index in range(1005)]  # two pages of S3's 1000
    for name in names:
        backend.put(name, b"")
    fault_proxy.add_rule(Fault.cut_response(100), method="GET", query="continuation-token", times=1)
    assert [info.key for info in backend.list()] == names
    pages = [r.query for r in fault_proxy.requests if "list-type=2" in r.query]
    assert len(pages) == 4  # page 1, page 2 (cut), then page 1 and page 2 again


@seaweedfs
def test_listing_prefixes_match_the_boto3_transport(
    settings: Callable[..., ObjectStoreSettings], scope: str
) -> None:
    config = settings()
    fast = open_obstore(config).scoped(scope)
    plain = S3Backend(config, resolve_endpoint(config)).scoped(scope)
    for key in ("a", "a/b", "a b", "a#", "ab", "b", "b/c/d", "0", "09"):
        fast.put(key, key.encode())
    for prefix in ("", "a", "a/", "a ", "b/c", "b/c/", "0", "z"):
        expected = sorted((i.key, i.size, i.etag) for i in plain.list(prefix))
        assert sorted((i.key, i.size, i.etag) for i in fast.list(prefix)) == expected, prefix
    # No key has an empty or dot segment (as on AWS; SeaweedFS folds "a//" into "a/").
    assert list(fast.list("a//")) == list(fast.list("./")) == []


@seaweedfs
def test_a_read_only_process_never_imports_boto3(
    settings: Callable[..., ObjectStoreSettings], tmp_path: Path
) -> None:
    config = settings(organization_id="read-only")
    with ObjectStore(config) as writer:
        writer.save("k", "v")
    script = (
        "import json, sys\n"
        "from objectstore_s3 import ObjectStore, ObjectStoreSettings\n"
        "store = ObjectStore(ObjectStoreSettings(**json.loads(sys.argv[1])))\n"
        "assert store.read('k') == 'v' and store.contains_key('k') and store.keys == ['k']\n"
        "store.close()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore'))))\n"
    )
    reader = config.model_copy(update={"cache_dir": tmp_path / "reader-cache"})
    out = subprocess.run(
        [sys.executable, "-c", script, settings_json(reader)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == []
