"""The obstore transport through the fault proxy: answers lost on the way back are
resolved or reported as unknown, cut bodies, parts and listing pages are fetched again,
throttled requests are retried.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from objectstore_s3 import StorageUnavailableError
from objectstore_s3.errors import (
    OutcomeUnknownError,
    PreconditionFailedError,
)
from objectstore_s3.settings import ObjectStoreSettings
from objectstore_s3.transport.base import content_etag
from objectstore_s3.transport.transfer import download_parts
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.obstore import open_obstore

MiB = 1024 * 1024
seaweedfs = pytest.mark.seaweedfs


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
    # The parts are fetched in parallel: cut the first part whichever comes first (the
    # last is 1 MiB, shorter than the cut, and was once the rule's only victim).
    first_part = lambda headers: headers.get("range", "").startswith("bytes=0-")  # noqa: E731
    fault_proxy.add_rule(Fault.cut_response(2 * MiB), method="GET", header=first_part, times=1)
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
