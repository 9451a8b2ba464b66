"""Recounts of the ledger from a listing: after objects were added behind the store, for a
missing or damaged ledger, for drift while other stores are live, for writes whose answers
were lost (kept until their horizon), and the cleanup of abandoned multipart uploads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from objectstore_s3 import (
    ObjectStore,
)
from objectstore_s3.quota import LEDGER
from tests.conftest import StoreFactory
from tests.support.helpers import (
    delete_ledger,
    ledger,
    listing,
    put_behind,
    write_ledger,
)
from tests.support.quota import at_rest, check_at_rest, fill, settled_store


@pytest.mark.seaweedfs
def test_reconcile_aborts_incomplete_multipart_uploads(
    seaweed_settings: object, tmp_path: Path
) -> None:
    settings = seaweed_settings()  # type: ignore[operator]
    with ObjectStore(settings) as store:
        store.save("k", "v")
        client = store._connection().client  # type: ignore[attr-defined]
        bucket_key = f"{store.organization_id}/killed-sync-back.bin"
        upload = client.create_multipart_upload(Bucket=settings.bucket, Key=bucket_key)
        client.upload_part(
            Bucket=settings.bucket,
            Key=bucket_key,
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"x" * (5 * 1024 * 1024),
        )
        listed = client.list_multipart_uploads(Bucket=settings.bucket, Prefix=bucket_key)
        assert len(listed.get("Uploads", [])) == 1
        store.reconcile_usage()  # keeps uploads younger than an hour
        assert (
            len(
                client.list_multipart_uploads(Bucket=settings.bucket, Prefix=bucket_key).get(
                    "Uploads", []
                )
            )
            == 1
        )
        usage = store.reconcile_usage(abort_uploads_older_than=0)
        left = client.list_multipart_uploads(Bucket=settings.bucket, Prefix=bucket_key)
        assert left.get("Uploads", []) == []
        assert usage.files == 1


def test_a_recount_does_not_subtract_a_live_stores_deletes_twice(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    writer = settled_store(make_store, 10, storage_file_count=10)  # the ledger knows the 10
    for index in range(5):
        writer.delete(f"k{index}")  # not settled yet
    other = make_store(storage_file_count=10, cache_dir=tmp_path / "other")
    assert other.reconcile_usage().files == 5  # the listing already lacks them
    writer.flush()  # settles its deletes against that recount
    assert ledger(other)["files"] == 5
    at_rest(writer)
    assert fill(other) == 5
    assert listing(other)[1] == 10


@pytest.mark.parametrize(
    "damage",
    [
        {"leases": {"x": {"bytes": 1, "files": 1}}},  # a lease without its expiry
        {"leases": {"x": {"bytes": 1, "files": 1, "expires": "soon"}}},
        {"bytes": 1e400},
        {"files": -5.5, "bytes": "many"},
        [1, 2, 3],
    ],
    ids=["no-expiry", "string-expiry", "infinite-bytes", "bad-counts", "not-an-object"],
)
def test_a_ledger_of_nonsense_is_rebuilt_from_a_listing(
    make_store: StoreFactory, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    store = settled_store(make_store, 3, value="vv", storage_file_count=5)
    state = ledger(store)
    if isinstance(damage, dict):
        state.update(damage)
        write_ledger(store, state)
    else:
        put_ledger_raw(store, json.dumps(damage).encode())
    other = make_store(storage_file_count=5)
    assert other.save("k3", "vv")  # no raw KeyError / TypeError / OverflowError
    assert other.usage()[:2] == (8, 4)
    assert "damaged" in caplog.text
    other.flush()
    assert fill(other) == 1


def put_ledger_raw(store: ObjectStore, body: bytes) -> None:

    store._node.parts.quota.book.records.put(LEDGER, body)


def test_drift_is_repaired_within_ten_minutes_while_other_stores_are_live(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    store = settled_store(make_store, 4, storage_file_count=10)
    other = make_store(storage_file_count=10, cache_dir=tmp_path / "other")
    assert other.save("o", "v")  # a live lease: the organization is never quiet
    other.flush()
    state = ledger(store)
    state.update(files=9, drift=True)  # over-counted by 4 (answers lost, say)
    write_ledger(store, state)
    store._node.parts.quota.renew()
    assert ledger(store)["files"] == 9  # recounted 1 s ago: the over-count waits
    state = ledger(store)
    state["rebased_at"] = float(state["rebased_at"]) - 601  # type: ignore[arg-type]
    write_ledger(store, state)
    store._node.parts.quota.renew()
    repaired = ledger(store)
    assert (repaired["files"], repaired["drift"]) == (5, False)
    assert other._node.parts.quota.lease_id in repaired["leases"]  # type: ignore[operator]
    check_at_rest(make_store, tmp_path, store, other, files=5)


def test_a_recount_keeps_a_maybe_until_its_horizon_then_trusts_the_listing() -> None:
    from objectstore_s3.quota import Ledger

    book = Ledger(files=3, bytes=30, maybes=[(1, 10, 100.0), (2, 20, 50.0)])
    book = Ledger.parse(book.dump())  # kept in the ledger as written
    book.rebase(listed_bytes=5, listed_files=1, server_low=60.0)
    # The write that may land until 100 may be missing from a listing begun at 60.
    assert (book.files, book.bytes, book.maybes, book.drift) == (2, 15, [(1, 10, 100.0)], True)
    book.rebase(listed_bytes=15, listed_files=2, server_low=101.0)
    assert (book.files, book.bytes, book.maybes, book.drift) == (2, 15, [], False)


def test_reconcile_after_objects_added_behind_the_store(make_store: StoreFactory) -> None:
    store = make_store()
    store.save("k", "v")
    store.flush()
    assert store.usage().files == 1
    for index in range(3):
        put_behind(store, f"other-tool/{index}", b"12345")
    assert store.usage().files == 4  # usage() counts the bucket as it is now
    assert ledger(store)["files"] == 1  # the ledger does not know yet
    usage = store.reconcile_usage()
    assert (usage.bytes, usage.files) == (1 + 15, 4)
    assert listing(store) == (16, 4)


def test_missing_ledger_is_rebuilt_from_a_listing(make_store: StoreFactory) -> None:
    store = make_store()
    for index in range(3):
        store.save(f"k{index}", "vv")
    store.flush()
    delete_ledger(store)
    other = make_store()
    assert other.usage().files == 3
    assert other.usage().bytes == 6
