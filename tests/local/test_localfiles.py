"""get_file_path: local files materialized from the bucket (syncing back is in
test_localfile_sync.py).

LEAN's cases, conflicts with another node, two processes at once, keys whose files would
be hidden or clash, DataFrames in five formats, a model file and a 256 MiB round trip.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from objectstore_s3 import (
    InvalidKeyError,
    LocalFileConflictError,
    LocalPathClashError,
    ObjectStore,
    StorageUnavailableError,
)
from tests.conftest import SettingsFactory, StoreFactory
from tests.support.helpers import bucket_view, requests_of
from tests.support.seaweed_stores import observer
from tests.support.worker import spawn

MiB = 1024 * 1024


def second_node(
    make_store: StoreFactory, tmp_path: Path, name: str = "node-b", **overrides: object
) -> ObjectStore:
    """Another machine: its own cache and local folders."""
    return make_store(
        cache_dir=tmp_path / f"{name}-cache", local_root=tmp_path / f"{name}-local", **overrides
    )


# -- LEAN's cases -------------------------------------------------------------------------------


def test_get_file_path_then_delete(store: ObjectStore) -> None:
    path = Path(store.GetFilePath("a/b/c"))
    path.write_text("data")
    assert store.contains_key("a/b/c")
    assert store.Delete("a/b/c")
    assert not path.exists()
    assert not store.contains_key("a/b/c")
    assert store.keys == []


def test_external_write_then_save(make_store: StoreFactory, tmp_path: Path) -> None:
    store = make_store()
    path = store.get_file_path("model")
    with open(path, "wb") as handle:  # an external method writes the file
        handle.write(b"trained weights")
    assert store.read_bytes("model") == b"trained weights"  # unsynced, seen on this node
    assert store.Save("model")
    assert second_node(make_store, tmp_path).read_bytes("model") == b"trained weights"


def test_save_without_file(store: ObjectStore) -> None:
    path = store.get_file_path("never-written")
    with pytest.raises(FileNotFoundError, match="never-written") as caught:
        store.save("never-written")
    assert path in str(caught.value)
    assert store.read("never-written") is None


def test_nested_parents_created(store: ObjectStore) -> None:
    path = Path(store.get_file_path("abc/12 3/test"))
    assert path.parent.is_dir()
    expected = store.settings.local_root / store.organization_id / "abc/12 3/test"
    assert path == expected.resolve()
    path.write_text("x")
    store.flush()
    assert store.read("abc/12 3/test") == "x"


# -- materializing ------------------------------------------------------------------------------


def test_existing_key_downloaded_once(make_store: StoreFactory, tmp_path: Path) -> None:
    make_store().save_bytes("blob", b"content" * 1000)
    node = second_node(make_store, tmp_path)
    path = Path(node.get_file_path("blob"))
    assert path.read_bytes() == b"content" * 1000
    assert not list(path.parent.glob(".*.part"))  # no temporary left behind
    calls = requests_of(node, "blob")
    assert node.get_file_path("blob") == str(path)
    assert calls == ["HeadObject"]  # current: not downloaded again


def test_other_node_change_is_brought_in(make_store: StoreFactory, tmp_path: Path) -> None:
    writer = make_store()
    writer.save("cfg", "v1")
    node = second_node(make_store, tmp_path)
    path = Path(node.get_file_path("cfg"))
    writer.save("cfg", "v2")
    assert node.get_file_path("cfg") == str(path)
    assert path.read_text() == "v2"


def test_conflict_keeps_both_sides(make_store: StoreFactory, tmp_path: Path) -> None:
    writer = make_store()
    writer.save("cfg", "bucket v1")
    errors: list[Exception] = []
    node = second_node(make_store, tmp_path, on_error=errors.append)
    path = Path(node.get_file_path("cfg"))
    path.write_text("local edit")
    writer.save("cfg", "bucket v2")
    with pytest.raises(LocalFileConflictError, match="'cfg'.*save\\(key\\)"):
        node.get_file_path("cfg")
    assert path.read_text() == "local edit"
    node.flush()  # automatic sync: reported, nothing overwritten
    assert isinstance(errors[0], LocalFileConflictError)
    observer = bucket_view(make_store, tmp_path)
    assert observer.read("cfg") == "bucket v2"
    assert node.save("cfg")  # the way out: keep the local version explicitly
    assert observer.read("cfg") == "local edit"


def test_file_from_an_earlier_run(make_store: StoreFactory, tmp_path: Path) -> None:
    node = make_store()
    node.save("state", "saved")
    path = Path(node.get_file_path("state"))
    node.close()
    later = os.stat(path).st_mtime + 60
    path.write_text("edited after the last sync")
    os.utime(path, (later, later))
    # A new process on the node: the bucket did not change, so the edit is kept and synced.
    fresh = make_store()
    assert fresh.get_file_path("state") == str(path)
    assert path.read_text() == "edited after the last sync"
    fresh.close()
    assert bucket_view(make_store, tmp_path).read("state") == "edited after the last sync"
    # Edited again, and the bucket changed too: neither side is overwritten.
    path.write_text("second local edit")
    os.utime(path, (later + 60, later + 60))
    second_node(make_store, tmp_path, "elsewhere").save("state", "changed elsewhere")
    with pytest.raises(LocalFileConflictError):
        make_store().get_file_path("state")
    assert path.read_text() == "second local edit"


def test_two_processes_get_the_same_key_at_once(
    make_http_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_http_settings()
    payload = os.urandom(8 * MiB)
    with ObjectStore(settings.model_copy(update={"cache_dir": tmp_path / "w"})) as writer:
        writer.save_bytes("shared.bin", payload)
    processes = [spawn(settings, "get-file", "shared.bin", "0") for _ in range(2)]
    digests = [process.communicate(timeout=120)[0].strip() for process in processes]
    assert all(process.returncode == 0 for process in processes)
    assert digests == [hashlib.sha256(payload).hexdigest()] * 2


# -- user stories ---------------------------------------------------------------------


def daily_bars() -> object:
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(7)
    close = 400 + rng.standard_normal(360).cumsum()
    return pd.DataFrame(
        {
            "time": pd.date_range("2023-01-01", periods=360, freq="D"),
            "open": close + rng.standard_normal(360),
            "high": close + 2,
            "low": close - 2,
            "close": close,
            "volume": rng.integers(1_000_000, 5_000_000, 360),
        }
    )


@pytest.mark.parametrize("fmt", ["csv", "json", "xml", "parquet", "pickle"])
def test_dataframe_round_trip_on_a_second_node(
    make_store: StoreFactory, tmp_path: Path, fmt: str
) -> None:
    pd = pytest.importorskip("pandas")
    frame = daily_bars()
    backtest = make_store()
    path = backtest.get_file_path(f"df_to_{fmt}")
    writers = {
        "csv": lambda: frame.to_csv(path, index=False),
        "json": lambda: frame.to_json(path, date_format="iso"),
        "xml": lambda: frame.to_xml(path, index=False),
        "parquet": lambda: frame.to_parquet(path),
        "pickle": lambda: frame.to_pickle(path),
    }
    writers[fmt]()
    backtest.close()  # synced on close
    research = second_node(make_store, tmp_path, "research")
    other = research.get_file_path(f"df_to_{fmt}")
    readers = {
        "csv": lambda: pd.read_csv(other, parse_dates=["time"]),
        "json": lambda: pd.read_json(other),
        "xml": lambda: pd.read_xml(other, parse_dates=["time"]),
        "parquet": lambda: pd.read_parquet(other),
        "pickle": lambda: pd.read_pickle(other),
    }
    reread = readers[fmt]()
    assert len(reread) == 360
    pd.testing.assert_frame_equal(
        reread[["close", "volume"]].astype(float),
        frame[["close", "volume"]].astype(float),
        check_exact=False,
        rtol=1e-9,
    )
    assert list(reread["time"].astype("datetime64[ns]")) == list(frame["time"]) or fmt == "json"


def test_model_file_round_trip(make_store: StoreFactory, tmp_path: Path) -> None:
    model = {"weights": [os.urandom(64) for _ in range(1000)], "bias": 0.25, "epochs": 12}
    trainer = make_store()
    with open(trainer.get_file_path("models/alpha.pkl"), "wb") as handle:
        pickle.dump(model, handle)
    trainer.save("models/alpha.pkl")
    live = second_node(make_store, tmp_path, "live")
    with open(live.get_file_path("models/alpha.pkl"), "rb") as handle:
        assert pickle.load(handle) == model


@pytest.mark.slow
def test_256_mib_round_trip(make_store: StoreFactory, tmp_path: Path) -> None:
    writer = make_store()
    path = Path(writer.get_file_path("big.bin"))
    digest = hashlib.sha256()
    block = os.urandom(MiB)
    with path.open("wb") as handle:
        for index in range(256):
            chunk = index.to_bytes(4, "big") + block[4:]
            digest.update(chunk)
            handle.write(chunk)
    assert writer.save("big.bin")
    reader = second_node(make_store, tmp_path, "reader")
    copy = Path(reader.get_file_path("big.bin"))
    assert copy.stat().st_size == 256 * MiB
    with copy.open("rb") as handle:
        assert hashlib.file_digest(handle, "sha256").hexdigest() == digest.hexdigest()


def test_a_failed_delete_keeps_the_local_file(tmp_path: Path) -> None:
    """The object is still in the bucket, so its local file (maybe with changes) stays."""
    from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket
    from tests.conftest import store_settings

    bucket = MemoryBucket()
    with ObjectStore(store_settings(tmp_path), backend=MemoryBackend(bucket)) as store:
        store.save("model", b"v1")
        path = Path(store.get_file_path("model"))
        path.write_bytes(b"v2, not saved yet")

        def refuse(operation: str, key: str, stage: str) -> None:
            if operation == "DeleteObject":
                raise StorageUnavailableError("the server is down (injected)")

        bucket.faults.append(refuse)
        with pytest.raises(StorageUnavailableError):
            store.delete("model")
        bucket.faults.clear()
        assert path.read_bytes() == b"v2, not saved yet"
        assert store.read_bytes("model") == b"v2, not saved yet"
        assert store.contains_key("model")


@pytest.mark.seaweedfs
@pytest.mark.parametrize("key", ["/.secret", "\\..model", "/.hidden/x", "./.x"])
def test_keys_that_would_be_hidden_are_refused(
    stores: Callable[..., ObjectStore], key: str
) -> None:
    store = stores()
    with pytest.raises(InvalidKeyError, match="starts with '.'"):
        store.save(key, "v")
    assert store.keys == []


@pytest.mark.seaweedfs
def test_keys_a_and_a_slash_b_with_local_files(
    stores: Callable[..., ObjectStore], tmp_path: Path
) -> None:
    store = stores()
    store.save("a", "parent")
    store.save("a/b", "child")
    assert store.keys == ["a", "a/b"]
    assert Path(store.get_file_path("a")).read_text() == "parent"
    with pytest.raises(LocalPathClashError, match="'a/b'") as caught:
        store.get_file_path("a/b")
    assert isinstance(caught.value, FileExistsError)
    assert store.read("a/b") == "child"  # still readable without a file
    assert store.delete("a")
    assert not observer(stores, tmp_path).contains_key("a")
    assert Path(store.get_file_path("a/b")).read_text() == "child"  # now it fits
    assert store.delete("a/b")
    assert store.keys == []
