"""The fault matrix (tests/support/fault_matrix.py) for reads: read, contains_key, keys,
iteration and get_file_path; a failed read caches nothing and leaves no partial file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BUCKET
from tests.support.fault_matrix import KEY, NEW, OLD, read_cases
from tests.support.fault_rig import Rig, parametrize

pytestmark = pytest.mark.seaweedfs


@parametrize(read_cases(body=True))
def test_read(rig: Rig) -> None:
    rig.observer.save(KEY, NEW)  # not in the proxied store's cache
    rig.inject("GET", rig.object_path())
    result = rig.call(lambda: rig.store.read_bytes(KEY), expect_ok=not rig.fails)
    if not rig.fails:
        assert result == NEW
        return
    assert rig.store._node.local.cache.meta(KEY) is None  # nothing partial cached
    rig.heal()
    assert rig.store.read_bytes(KEY) == NEW


@parametrize(read_cases())
def test_contains_key(rig: Rig) -> None:
    rig.observer.save(KEY, NEW)
    rig.inject("HEAD", rig.object_path())
    result = rig.call(lambda: rig.store.contains_key(KEY), expect_ok=not rig.fails)
    if not rig.fails:
        assert result is True
        return
    rig.heal()
    assert rig.store.contains_key(KEY)


@parametrize(read_cases(body=True))
def test_keys(rig: Rig) -> None:
    rig.observer.save(KEY, NEW)
    rig.inject("GET", rf"^/{BUCKET}/?$", query="list-type=2")
    result = rig.call(lambda: rig.store.keys, expect_ok=not rig.fails)
    if not rig.fails:
        assert result == [KEY, "warm"]
        return
    rig.heal()
    assert rig.store.keys == [KEY, "warm"]


@parametrize(read_cases(body=True))
def test_iteration(rig: Rig) -> None:
    rig.observer.save("a", OLD)
    rig.observer.save(KEY, NEW)
    rig.store._node.local.cache.clear()  # "warm" is fetched too
    rig.inject("GET", rig.object_path())
    result = rig.call(lambda: list(rig.store), expect_ok=not rig.fails)
    expected = [("a", OLD), (KEY, NEW), ("warm", b"w")]
    if not rig.fails:
        assert [(pair.key, pair.value) for pair in result] == expected
        return
    assert rig.store._node.local.cache.meta(KEY) is None
    rig.heal()
    assert [(pair.key, pair.value) for pair in rig.store] == expected


@parametrize(read_cases(body=True))
def test_get_file_path(rig: Rig) -> None:
    rig.observer.save(KEY, NEW)
    path = rig.store._node.local.states.path_for(KEY)
    folder = path.parent
    rig.inject("GET", rig.object_path())
    result = rig.call(lambda: rig.store.get_file_path(KEY), expect_ok=not rig.fails)
    if not rig.fails:
        assert Path(result).read_bytes() == NEW
        return
    # No file with part of the value at the key's path (absent, or empty at most).
    assert not path.exists() or path.read_bytes() == b""
    if folder.exists():  # nor any other file holding part of it (a temporary)
        assert not [p for p in folder.iterdir() if p.is_file() and p.stat().st_size]
    rig.heal()
    assert Path(rig.store.get_file_path(KEY)).read_bytes() == NEW
