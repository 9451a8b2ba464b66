"""The Backend's versions, server-side copies and presigned URLs, on every backend.

On a versioned bucket (a fresh prefix of one versioned bucket per session on the S3
servers): a key's history newest first, reads of an earlier version, delete markers,
removing one version for good, copies with preconditions on the destination. Without
versioning (the contract bucket, and rclone, which has none): the current objects as
version "null". Presigned URLs are fetched without credentials where a server serves them.
"""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from objectstore_s3.errors import (
    KeyNotFoundError,
    ObjectStoreError,
    OutcomeUnknownError,
    PreconditionFailedError,
    UnsupportedOperationError,
)
from objectstore_s3.transport import capability
from objectstore_s3.transport.base import Backend, ObjectData, content_etag
from objectstore_s3.transport.capability import probe
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket
from tests.conftest import BUCKET, server_of, store_settings, transport_of

VERSIONED_BUCKET = "versions-tests"
VERSIONED = pytest.mark.backends(
    "memory", "moto", "seaweedfs", "seaweedfs-obstore", "seaweedfs-cluster"
)
MIB = 1024 * 1024
WRONG_ETAG = '"00000000000000000000000000000000"'


def _open(backend_name: str, request: pytest.FixtureRequest, tmp: Path, bucket: str) -> Backend:
    from objectstore_s3.node.connect import open_backend

    server = server_of(backend_name, request)
    settings = store_settings(tmp, server, bucket=bucket, **transport_of(backend_name))
    return open_backend(settings)


@contextlib.contextmanager
def _backend(
    backend_name: str,
    request: pytest.FixtureRequest,
    tmp: Path,
    *,
    versioned: bool,
    bucket: str = VERSIONED_BUCKET,
) -> Iterator[Backend]:
    """A fresh prefix of a bucket (versioned unless told; rclone's never is)."""
    with contextlib.ExitStack() as stack:
        if backend_name == "memory":
            root: Backend = MemoryBackend(MemoryBucket())
        else:
            if backend_name == "moto":
                from moto import mock_aws

                stack.enter_context(mock_aws())
            versioned = versioned and backend_name != "rclone"
            root = _open(backend_name, request, tmp, bucket if versioned else BUCKET)
            stack.callback(root.close)
        root.create_bucket(versioned=versioned)
        yield root.scoped(f"t-{uuid.uuid4().hex[:10]}/")


@pytest.fixture
def versioned(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Backend]:
    assert backend_name != "rclone", "rclone has no versioning (test_rclone_has_no_versioning)"
    with _backend(backend_name, request, tmp_path, versioned=True) as backend:
        yield backend


@pytest.fixture
def plain(backend_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with _backend(backend_name, request, tmp_path, versioned=False) as backend:
        yield backend


def _body(data: ObjectData | None) -> bytes:
    assert data is not None
    return data.body


# -- history and reads of a version -------------------------------------------------------


@VERSIONED
def test_history_is_newest_first_and_each_version_reads_back(versioned: Backend) -> None:
    assert versioned.versioning() == "enabled"
    written = [versioned.put("k", body) for body in (b"one", b"two", b"three")]
    versioned.put("other", b"x")
    ids = [info.version_id for info in written]
    assert None not in ids
    assert "null" not in ids
    assert len(set(ids)) == 3
    history = list(versioned.list_versions("k"))
    assert [v.key for v in history] == ["k"] * 3  # "other" is not under the prefix "k"
    assert [v.version_id for v in history] == ids[::-1]
    assert [v.etag for v in history] == [content_etag(b) for b in (b"three", b"two", b"one")]
    assert [v.size for v in history] == [5, 3, 3]
    assert [v.latest for v in history] == [True, False, False]
    assert not any(v.deleted for v in history)
    for info, body in zip(written, (b"one", b"two", b"three"), strict=True):
        data = versioned.get("k", version_id=info.version_id)
        assert _body(data) == body
        assert data.info.etag == content_etag(body)
    assert [v.key for v in versioned.list_versions()] == ["k", "k", "k", "other"]


@pytest.mark.backends("memory", "seaweedfs", "seaweedfs-obstore", "seaweedfs-cluster")
def test_versions_and_markers_of_one_second_keep_the_servers_order(versioned: Backend) -> None:
    """Listings give Last-Modified to the second and botocore splits a page into versions
    and markers: a save, a delete and a save within one second once came back as
    [save, save, marker]. moto is left out: its own answer lists versions first."""
    for attempt in range(5):  # until all three fall in one second (almost always at once)
        key = f"tie{attempt}"
        versioned.put(key, b"old")
        versioned.delete(key)
        versioned.put(key, b"new")
        history = list(versioned.list_versions(key))
        if len({v.last_modified for v in history}) == 1:
            break
    assert [(v.deleted, v.size) for v in history] == [(False, 3), (True, 0), (False, 3)]
    assert [
        _body(versioned.get(key, version_id=v.version_id)) for v in (history[0], history[2])
    ] == [
        b"new",
        b"old",
    ]


@VERSIONED
def test_a_version_downloads_to_a_file(versioned: Backend, tmp_path: Path) -> None:
    first = versioned.put("k", b"first value")
    versioned.put("k", b"second")
    info = versioned.download("k", tmp_path / "f", version_id=first.version_id)
    assert (tmp_path / "f").read_bytes() == b"first value"
    assert info.etag == first.etag
    with pytest.raises(KeyNotFoundError):
        versioned.download("nothing", tmp_path / "g", version_id=first.version_id)


@VERSIONED
def test_a_delete_leaves_a_marker_and_the_versions(versioned: Backend) -> None:
    old = versioned.put("k", b"value")
    versioned.delete("k")
    assert versioned.head("k") is None
    assert [info.key for info in versioned.list("")] == []
    with pytest.raises(KeyNotFoundError):
        versioned.get("k")
    marker, kept = list(versioned.list_versions("k"))
    assert (marker.deleted, marker.latest, marker.size, marker.etag) == (True, True, 0, None)
    assert (kept.deleted, kept.latest, kept.version_id) == (False, False, old.version_id)
    with pytest.raises(KeyNotFoundError) as caught:
        versioned.get("k", version_id=marker.version_id)  # a marker has no bytes
    assert marker.version_id in str(caught.value)
    data = versioned.get("k", version_id=old.version_id)
    assert _body(data) == b"value"
    # A current delete marker is absence, for the preconditions too.
    with pytest.raises(PreconditionFailedError):
        versioned.put("k", b"x", if_match=old.etag)
    versioned.put("k", b"back", if_none_match="*")


@VERSIONED
def test_removing_a_version_makes_the_previous_one_current(versioned: Backend) -> None:
    first = versioned.put("k", b"first")
    second = versioned.put("k", b"second")
    assert second.version_id is not None
    assert first.version_id is not None
    versioned.delete_version("k", second.version_id)
    data = versioned.get("k")
    assert _body(data) == b"first"
    assert [(v.version_id, v.latest) for v in versioned.list_versions("k")] == [
        (first.version_id, True)
    ]
    versioned.delete_version("k", second.version_id)  # gone already: nothing to do
    versioned.delete("k")
    (marker, _) = list(versioned.list_versions("k"))
    versioned.delete_version("k", marker.version_id)  # removing the marker undeletes
    head = versioned.head("k")
    assert head is not None
    assert head.etag == first.etag
    versioned.delete_version("k", first.version_id)
    assert versioned.head("k") is None
    assert list(versioned.list_versions("k")) == []
    with pytest.raises(KeyNotFoundError):
        versioned.get("k", version_id=first.version_id)


# -- server-side copies ---------------------------------------------------------------------


@VERSIONED
def test_copy_of_a_version_with_preconditions_on_the_destination(versioned: Backend) -> None:
    old = versioned.put("src", b"old")
    versioned.put("src", b"new")
    copied = versioned.copy("src", "dst", version_id=old.version_id)
    assert copied.etag == content_etag(b"old")
    data = versioned.get("dst")
    assert _body(data) == b"old"
    latest = versioned.copy("src", "dst", if_match=copied.etag)  # the current one
    assert latest.version_id not in (None, copied.version_id)
    data = versioned.get("dst")
    assert _body(data) == b"new"
    with pytest.raises(KeyNotFoundError):
        versioned.copy("missing", "dst2")
    if not _honours_copy_conditions(versioned):
        return
    with pytest.raises(PreconditionFailedError):
        versioned.copy("src", "dst", if_none_match="*")
    with pytest.raises(PreconditionFailedError):
        versioned.copy("src", "dst", version_id=old.version_id, if_match=WRONG_ETAG)
    data = versioned.get("dst")
    assert _body(data) == b"new"  # neither refused copy landed
    versioned.delete("dst")
    versioned.copy("src", "dst", version_id=old.version_id, if_none_match="*")  # marker: absent


def _honours_copy_conditions(backend: Backend) -> bool:
    found = probe(backend)
    return found.conditional_copy


# What each server does with If-Match / If-None-Match on CopyObject (moto 5.2 ignores them).
COPY_CONDITIONS = {
    "memory": True,
    "moto": False,
    "seaweedfs": True,
    "seaweedfs-obstore": True,
    "seaweedfs-cluster": True,
    "rclone": False,
}


@VERSIONED
def test_the_probe_finds_whether_copies_honour_preconditions_and_leaves_no_version(
    versioned: Backend, backend_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capability, "_probed", {})  # probe this backend, not a cached finding
    found = probe(versioned)
    assert (found.conditional_put, found.conditional_delete) == (True, True)
    assert found.conditional_copy is COPY_CONDITIONS[backend_name]
    assert list(versioned.list_versions("probe/")) == []  # every version of the probes


@pytest.mark.backends("memory")
def test_a_probe_cut_off_midway_learns_nothing_and_is_asked_again(
    versioned: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the torture test: the copy probe's answer was lost (a timeout) and the
    OutcomeUnknownError escaped a write-behind flush at close, about a probe object."""
    monkeypatch.setattr(capability, "_probed", {})
    real_put = versioned.put

    def losing_the_copy_targets_answer(key: str, body: bytes, **kwargs: Any) -> Any:
        answer = real_put(key, body, **kwargs)
        if key.endswith("-copy"):
            raise OutcomeUnknownError("no answer")
        return answer

    monkeypatch.setattr(versioned, "put", losing_the_copy_targets_answer)
    found = probe(versioned)
    monkeypatch.setattr(versioned, "put", real_put)
    assert (found.conditional_delete, found.conditional_copy) == (False, False)  # safe side
    assert capability._probed == {}  # not cached: the next write asks again
    assert probe(versioned).conditional_copy is True
    assert [v.key for v in versioned.list_versions("probe/")] == []


@pytest.mark.backends("moto", "seaweedfs", "seaweedfs-cluster")
def test_a_copy_above_the_single_copy_limit_goes_in_parts(
    versioned: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from objectstore_s3.transport.boto3 import backend as boto_backend
    from objectstore_s3.transport.boto3 import multipart

    monkeypatch.setattr(boto_backend, "COPY_LIMIT", 6 * MIB)
    monkeypatch.setattr(multipart, "COPY_PART", 5 * MIB)
    body = bytes(range(256)) * (7 * MIB // 256) + b"tail"
    source = versioned.put("big", body)
    versioned.put("big", b"newer")
    seen: list[str] = []
    versioned.on_request(lambda operation, key: seen.append(operation))  # type: ignore[attr-defined]
    copied = versioned.copy("big", "copy", version_id=source.version_id, if_none_match="*")
    assert seen.count("UploadPartCopy") == 2
    assert "CopyObject" not in seen
    assert copied.size == len(body)
    assert _body(versioned.get("copy")) == body
    with pytest.raises(PreconditionFailedError):  # checked by the completion
        versioned.copy("big", "copy", version_id=source.version_id, if_none_match="*")
    assert _body(versioned.get("copy")) == body
    assert list(versioned.stale_uploads(float("inf"))) == []  # the refused one was aborted


@VERSIONED
def test_versions_list_in_pages(versioned: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    from objectstore_s3.transport.boto3 import versions

    monkeypatch.setattr(versions, "PAGE", 2)
    written = [versioned.put(f"p{index % 2}", b"x" * index) for index in range(5)]
    versioned.delete("p1")
    listed = [(v.key, v.version_id, v.deleted) for v in versioned.list_versions("p")]
    newest_first = [(i.key, i.version_id, False) for i in reversed(written)]
    assert listed[0][0::2] == ("p0", False)
    assert listed == [
        *[entry for entry in newest_first if entry[0] == "p0"],
        listed[3],  # the marker: p1's current entry
        *[entry for entry in newest_first if entry[0] == "p1"],
    ]
    assert listed[3][0::2] == ("p1", True)


# moto 5.2 drops a key's older versions when a suspended bucket writes its "null" one.
@pytest.mark.backends("memory", "seaweedfs", "seaweedfs-cluster")
def test_a_suspended_bucket_keeps_one_null_version_per_key(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with _backend(
        backend_name, request, tmp_path, versioned=True, bucket="versions-suspended"
    ) as backend:
        kept = backend.put("k", b"kept")
        backend.set_versioning(False)
        try:
            assert backend.versioning() == "suspended"
            backend.put("k", b"first")
            backend.put("k", b"second")
            history = [(v.version_id, v.size, v.latest) for v in backend.list_versions("k")]
            assert history == [("null", 6, True), (kept.version_id, 4, False)]
            backend.delete("k")  # a "null" delete marker replaces the "null" version
            history = [(v.version_id, v.deleted) for v in backend.list_versions("k")]
            assert history == [("null", True), (kept.version_id, False)]
        finally:
            backend.set_versioning(True)
        assert backend.versioning() == "enabled"


# -- without versioning ----------------------------------------------------------------------


def test_an_unversioned_bucket_lists_its_objects_as_null_versions(plain: Backend) -> None:
    assert plain.versioning() == "off"
    plain.put("a", b"1")
    plain.put("a", b"22")
    plain.put("b", b"3")
    history = list(plain.list_versions())
    assert [(v.key, v.version_id, v.size, v.latest, v.deleted) for v in history] == [
        ("a", "null", 2, True, False),
        ("b", "null", 1, True, False),
    ]
    plain.delete("a")
    assert [v.key for v in plain.list_versions()] == ["b"]
    copied = plain.copy("b", "c")
    assert copied.etag == content_etag(b"3")
    data = plain.get("c")
    assert _body(data) == b"3"


@pytest.mark.backends("rclone")
def test_rclone_has_no_versioning(plain: Backend) -> None:
    assert plain.versioning() == "off"
    assert probe(plain).conditional_copy is COPY_CONDITIONS["rclone"]
    with pytest.raises(UnsupportedOperationError) as caught:
        plain.set_versioning(True)
    assert "versioning" in str(caught.value)
    assert plain.versioning() == "off"


# -- presigned URLs --------------------------------------------------------------------------


@pytest.mark.backends("memory")
def test_the_memory_backend_has_no_urls(plain: Backend) -> None:
    plain.put("k", b"v")
    with pytest.raises(UnsupportedOperationError) as caught:
        plain.presign("k", 60)
    assert isinstance(caught.value, NotImplementedError | ObjectStoreError)
    assert "S3 server" in str(caught.value)


@pytest.mark.backends("seaweedfs", "seaweedfs-obstore", "seaweedfs-cluster")
def test_a_presigned_url_reads_the_object_without_credentials(plain: Backend) -> None:
    plain.put("dir/k", b"shared value")
    url = plain.presign("dir/k", 60)
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - http on loopback
        assert answer.read() == b"shared value"
    tampered = url.replace("dir/k", "dir/other")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(tampered, timeout=10)  # noqa: S310
