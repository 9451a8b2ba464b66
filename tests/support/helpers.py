"""What tests look at beside the public API: the requests a store sends, the ledger, a
fresh listing of the organization, and a way to put objects behind a store's back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings, StorageUnavailableError
from objectstore_s3.quota import LEDGER
from tests.conftest import StoreFactory


def server_errors(backend_name: str) -> tuple[type[BaseException], ...]:
    """The client library's classes for an error answer, which ours are chained from:
    botocore's ClientError, or obstore's (a 404 is the builtin FileNotFoundError)."""
    if backend_name.endswith("-obstore"):
        import obstore.exceptions

        return (obstore.exceptions.BaseError, FileNotFoundError)
    import botocore.exceptions

    return (botocore.exceptions.ClientError,)


def requests_of(store: ObjectStore, key: str | None = None) -> list[str]:
    """A live list of the S3 operations the store sends from now on (on `key` only)."""
    calls: list[str] = []

    def record(operation: str, name: str | None) -> None:
        if key is None or name == key:
            calls.append(operation)

    store._node.parts.objects.on_request(record)  # type: ignore[attr-defined]
    return calls


def listing(store: ObjectStore) -> tuple[int, int]:
    """(bytes, files) of the organization from a fresh listing of the bucket."""
    usage = store._node.parts.quota.list_usage()
    return usage.bytes, usage.files


def ledger(store: ObjectStore) -> dict[str, object]:
    """The usage ledger as stored in the bucket."""
    records = store._node.parts.quota.book.records
    data = records.get(LEDGER)
    assert data is not None
    return dict(json.loads(data.body))


def write_ledger(store: ObjectStore, state: dict[str, object]) -> None:
    store._node.parts.quota.book.records.put(LEDGER, json.dumps(state).encode())


def delete_ledger(store: ObjectStore) -> None:
    store._node.parts.quota.book.records.delete(LEDGER)


def put_behind(store: ObjectStore, key: str, data: bytes) -> None:
    """Write an object the way another tool would: no quota, no cache."""
    store._node.parts.objects.put(key, data)


def break_backend(store: ObjectStore, monkeypatch: object, error: Exception) -> None:
    """Make every request of the store (objects and ledger) raise `error`."""
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    for backend in (store._node.parts.objects, store._node.parts.quota.book.records):
        for method in ("get", "head", "put", "delete", "list", "upload", "download"):
            monkeypatch.setattr(backend, method, fail)


def refused_in_bounded_time(
    settings: ObjectStoreSettings, cause: type[BaseException], within: float, says: str = ""
) -> None:
    """Every kind of call on a store whose endpoint refuses connections raises
    StorageUnavailableError naming the endpoint (and `says`), caused by `cause`, and all of
    them together take less than `within` seconds (with the default retries)."""
    port = settings.endpoint_url.rsplit(":", 1)[1]
    store = ObjectStore(settings)
    started = time.monotonic()
    for call in (
        lambda: store.save("k", "v"),
        lambda: store.read("k"),
        lambda: store.keys,
        lambda: store.contains_key("k"),
        lambda: store.delete("k"),
    ):
        with pytest.raises(StorageUnavailableError, match=f"127.0.0.1:{port}") as caught:
            call()
        assert "OBJECTSTORE_ENDPOINT_URL" in str(caught.value)
        assert says in str(caught.value)
        assert isinstance(caught.value.__cause__, cause)
    assert time.monotonic() - started < within


def crash(store: ObjectStore) -> None:
    """As if the process was killed: nothing flushed, nothing settled; the journal stays
    on disk for the next store on the node, and the quota lease stays in the ledger."""
    store._node.abandon()


def bucket_view(make_store: StoreFactory, tmp_path: Path, name: str = "observer") -> ObjectStore:
    """A second node that always asks the bucket (what other machines see)."""
    return make_store(cache_dir=tmp_path / name, cache_revalidate=True)


def file_from_another_node(
    make_store: StoreFactory, key: str, value: bytes, **folders: Path
) -> tuple[ObjectStore, ObjectStore, Path]:
    """One node saves `value` at `key`; another, with its own `folders` (cache_dir,
    local_root), asks for the key's local file: both nodes and the file's path."""
    writer = make_store()
    writer.save(key, value)
    reader = make_store(**folders)
    return writer, reader, Path(reader.get_file_path(key))
