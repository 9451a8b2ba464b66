"""Safe updates (issue 19): conditional saves (`if_match`, `if_absent`), `put` with the
new ETag, and `update*`, a read-modify-write that adds exactly once under contention.
Memory and SeaweedFS; rclone (which ignores preconditions) must refuse, not pretend."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from objectstore_s3 import (
    ObjectStore,
    ObjectStoreError,
    PreconditionFailedError,
    ServerCapabilityError,
    StorageLimitExceededError,
    SupersededWriteError,
)
from tests.conftest import StoreFactory
from tests.support.helpers import bucket_view, listing

pytestmark = pytest.mark.backends("memory", "seaweedfs")


def test_a_save_if_match_lands_only_over_that_etag(make_store: StoreFactory) -> None:
    store = make_store()
    first = store.put("risk/budget", "100")
    assert store.save("risk/budget", "90", if_match=first.etag) is True
    assert store.read("risk/budget") == "90"
    with pytest.raises(PreconditionFailedError) as caught:
        store.save("risk/budget", "80", if_match=first.etag)  # stale: someone saved since
    current = store.stat("risk/budget").etag
    assert caught.value.key == "risk/budget"
    assert caught.value.current_etag == current
    assert "risk/budget" in str(caught.value)
    assert str(current) in str(caught.value)
    assert isinstance(caught.value, ObjectStoreError)
    assert store.read("risk/budget") == "90"


def test_an_etag_without_its_quotes_is_the_same_etag(make_store: StoreFactory) -> None:
    store = make_store()
    etag = store.put("k", "1").etag
    assert etag is not None
    assert store.save_json("k", {"v": 2}, if_match=etag.strip('"')) is True
    assert store.read_json("k") == {"v": 2}


def test_a_save_if_absent_creates_once(make_store: StoreFactory) -> None:
    store, other = make_store(), make_store(cache_dir=make_store().settings.cache_dir / "b")
    assert store.save_string("registry/model-a", "v1", if_absent=True) is True
    with pytest.raises(PreconditionFailedError) as caught:
        other.save_bytes("registry/model-a", b"v2", if_absent=True)
    assert caught.value.current_etag == store.stat("registry/model-a").etag
    assert other.read("registry/model-a") == "v1"


def test_if_match_and_if_absent_together_are_refused(store: ObjectStore) -> None:
    with pytest.raises(ValueError, match="not both"):
        store.save("k", "v", if_match='"abc"', if_absent=True)


def test_put_returns_the_etag_the_next_save_expects(make_store: StoreFactory) -> None:
    store = make_store()
    stat = store.put("chain", "a", if_absent=True)
    for value in ("b", "c", "d"):
        stat = store.put("chain", value, if_match=stat.etag)
        assert stat.etag == store.stat("chain").etag
    assert store.read("chain") == "d"


def test_a_conditional_save_in_write_behind_is_written_through(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    store = make_store(persistence_interval_seconds=3600)
    observer = bucket_view(make_store, tmp_path)
    store.save("pending", "1")  # journaled, not yet in the bucket
    assert not observer.contains_key("pending")
    stat = store.put("pending", "2", if_absent=False)
    assert observer.read("pending") == "2"  # the pending save went first, then this one
    assert not store._node.local.journal
    assert store.save("pending", "3", if_match=stat.etag) is True
    assert observer.read("pending") == "3"


def test_a_failed_precondition_leaves_cache_and_usage_as_they_were(
    make_store: StoreFactory,
) -> None:
    store, other = make_store(), make_store(cache_dir=make_store().settings.cache_dir / "o")
    etag = store.put("k", "mine").etag
    other.save("k", "theirs-and-longer")
    before = listing(store)
    with pytest.raises(PreconditionFailedError):
        store.save("k", "x" * 100, if_match=etag)
    store.flush()
    assert listing(store) == before
    assert store.usage()[:2] == before
    assert store.read("k") == "theirs-and-longer"  # the cache never claimed the refused value


def test_a_conditional_save_over_the_limit_is_refused_in_any_mode(
    make_store: StoreFactory,
) -> None:
    store = make_store(storage_limit_bytes=10, mode="live")
    with pytest.raises(StorageLimitExceededError):
        store.put("big", "x" * 11, if_absent=True)
    assert store.save("big", "x" * 11, if_absent=True) is False  # reported, as any save
    assert not store.contains_key("big")


def test_update_passes_none_for_a_missing_key_and_returns_the_new_value(
    store: ObjectStore,
) -> None:
    assert store.update_json("counter", lambda n: (n or 0) + 1) == 1
    assert store.update_json("counter", lambda n: n + 1) == 2
    assert store.update("note", lambda text: (text or "") + "a") == "a"
    assert store.update_bytes("raw", lambda data: (data or b"") + b"\x00") == b"\x00"
    assert store.read_json("counter") == 2


def test_update_json_validates_into_the_given_type(store: ObjectStore) -> None:
    store.save_json("weights", {"spy": 1})
    new = store.update_json("weights", lambda w: {**w, "qqq": 2}, dict[str, int])
    assert new == {"spy": 1, "qqq": 2}


def test_concurrent_updates_on_two_nodes_add_exactly_once(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    """Four threads on each of two nodes, 25 increments each: exactly 200, whatever
    interleaving the server sees (write-behind on one node: updates are written through)."""
    nodes = [
        make_store(cache_dir=tmp_path / "a"),
        make_store(cache_dir=tmp_path / "b", persistence_interval_seconds=3600),
    ]
    errors: list[BaseException] = []

    def work(store: ObjectStore) -> None:
        try:
            for _ in range(25):
                store.update_json("shared/counter", lambda n: (n or 0) + 1, attempts=200)
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(node,)) for node in nodes for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert bucket_view(make_store, tmp_path).read_json("shared/counter") == 200


def test_update_gives_up_with_a_clear_error_after_its_attempts(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    store = make_store()
    rival = make_store(cache_dir=tmp_path / "rival")
    store.save("k", "0")
    turns = iter(range(1, 100))

    def meddle(text: str | None) -> str:
        rival.save("k", f"rival-{next(turns)}")  # always a newer write in between
        return "mine"

    with pytest.raises(PreconditionFailedError, match="3 attempts") as caught:
        store.update("k", meddle, attempts=3)
    assert caught.value.current_etag == rival.stat("k").etag
    assert store.read("k") == "rival-3"


@pytest.mark.backends("rclone")
@pytest.mark.rclone
def test_a_server_that_ignores_preconditions_refuses_conditional_saves(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    with pytest.raises(ServerCapabilityError, match="ignores If-Match"):
        store.save("k", "v", if_absent=True)


def test_a_pending_delete_of_a_key_made_elsewhere_since_is_reported_not_applied(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    """Found by the model test's `update` rule: a write-behind delete of a key only this
    node had (a get_file_path, nothing saved) met an object another node created since;
    it was completed silently as "already gone". It gives way and is reported."""
    errors: list[ObjectStoreError] = []
    store = make_store(persistence_interval_seconds=3600, on_error=errors.append)
    other = make_store(cache_dir=tmp_path / "other")
    store.get_file_path("k1")  # registered, no object
    assert store.delete("k1") is True  # journaled, expecting no object
    other.update("k1", lambda text: (text or "") + "+1")
    store.flush()
    assert [type(error) for error in errors] == [SupersededWriteError]
    assert "'k1'" in str(errors[0])
    assert other.read("k1") == "+1"


def test_creating_a_key_that_is_also_a_folder_says_what_the_server_refuses(
    make_store: StoreFactory, backend_name: str
) -> None:
    """Found by the model test: SeaweedFS keeps 'a' as a folder entry once 'a/b' exists
    and answers If-None-Match on 'a' with 412, which update() used to retry 30 times and
    report as 'changed by other writers'. Elsewhere the create simply lands."""
    store = make_store()
    store.save("a/b", "inside")
    if backend_name == "memory":
        assert store.update("a", lambda value: (value or "") + "+1") == "+1"
        return
    with pytest.raises(ServerCapabilityError, match="keys under 'a/'") as caught:
        store.update("a", lambda value: (value or "") + "+1")
    assert "without if_absent=" in str(caught.value)
    with pytest.raises(ServerCapabilityError, match="keys under 'a/'"):
        store.save("a", "1", if_absent=True)
    assert store.save("a", "1") is True  # the way out the message gives
    assert store.update("a", lambda value: (value or "") + "+1") == "1+1"
    assert store.read("a/b") == "inside"
