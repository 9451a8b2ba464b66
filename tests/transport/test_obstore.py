"""What is particular to the obstore transport on SeaweedFS (the contract suite runs on it
too, as "seaweedfs-obstore"): the requests that go through boto3, the server's clock,
large files in parts, listings like boto3's, and a reader that never imports boto3.
Its configuration and errors are in test_obstore_config.py, faults in
test_obstore_faults.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore
from objectstore_s3.errors import PreconditionFailedError
from objectstore_s3.server.seaweedfs import resolve_endpoint
from objectstore_s3.settings import ObjectStoreSettings
from objectstore_s3.transport.base import content_etag
from objectstore_s3.transport.boto3.backend import S3Backend
from objectstore_s3.transport.capability import probe
from tests.support.obstore import open_obstore
from tests.support.worker import ROOT, settings_json

MiB = 1024 * 1024
seaweedfs = pytest.mark.seaweedfs


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
