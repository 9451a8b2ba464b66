"""Quotas that hold exactly when two nodes race (issue 10): deletes of one key counted once,
a delete between the other's look and its delete, an overwrite racing a delete, and a
write-behind save of a key deleted elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import StoreFactory
from tests.support.helpers import ledger
from tests.support.quota import check_at_rest, fill


def test_two_nodes_deleting_one_key_count_it_once(make_store: StoreFactory, tmp_path: Path) -> None:
    node_a = make_store(storage_file_count=5)
    node_b = make_store(storage_file_count=5, cache_dir=tmp_path / "b")
    node_a.save("k", "v")
    assert node_b.read("k") == "v"  # B knows it exists
    node_a.delete("k")
    node_b.delete("k")  # cached as present: its conditional delete finds it gone
    check = check_at_rest(make_store, tmp_path, node_a, node_b, files=0, storage_file_count=5)
    assert ledger(check)["bytes"] == 0
    assert fill(check) == 5


def test_a_delete_between_the_others_head_and_delete(
    make_store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node_a = make_store(storage_file_count=10)
    node_b = make_store(storage_file_count=10, cache_dir=tmp_path / "b")
    for index in range(10):
        node_a.save(f"k{index}", "v")
    backend = node_b._node.parts.objects
    real_delete = backend.delete

    def delete_after_a(key: str, **kwargs: object) -> None:
        node_a.delete(key)  # A deletes right after B looked
        real_delete(key, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "delete", delete_after_a)
    for index in range(5):
        assert node_b.delete(f"k{index}")
    monkeypatch.undo()
    # Each delete counted once:
    check_at_rest(make_store, tmp_path, node_a, node_b, files=5, room=5, storage_file_count=10)


def test_an_overwrite_racing_a_delete_counts_the_new_file(
    make_store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node_a = make_store(storage_file_count=3)
    node_b = make_store(storage_file_count=3, cache_dir=tmp_path / "b")
    node_a.save("k", "v1")
    backend = node_a._node.parts.objects
    real_put = backend.put

    def put_after_b_deleted(key: str, data: bytes, **kwargs: object) -> object:
        if key == "k" and node_b.contains_key("k"):
            node_b.delete("k")
        return real_put(key, data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "put", put_after_b_deleted)
    assert node_a.save("k", "v2")  # planned as an overwrite, landed as a new file
    monkeypatch.undo()
    check_at_rest(make_store, tmp_path, node_a, node_b, files=1, room=2, storage_file_count=3)


def test_write_behind_save_of_a_key_deleted_elsewhere_cannot_pass_the_limit(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    node_a = make_store(storage_file_count=3, persistence_interval_seconds=3600)
    node_b = make_store(storage_file_count=3, cache_dir=tmp_path / "b")
    node_b.save("k", "v")
    assert node_a.read("k") == "v"  # A's cache now says k exists
    node_b.delete("k")
    assert fill(node_b) == 3
    node_b.flush()
    assert node_a.save("k", "from A") is False  # no room for it to be a new file
    node_a.flush()
    check_at_rest(make_store, tmp_path, node_a, node_b, files=3, storage_file_count=3)
