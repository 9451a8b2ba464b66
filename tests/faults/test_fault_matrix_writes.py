"""The fault matrix (tests/support/fault_matrix.py) for writes: save (written through),
save of a local file, and flush (write-behind uploads, changed local files); a failed
write leaves the bucket, the view, the usage and the ledger as they were, and pending
work is kept for a later flush.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fault_matrix import FAST_FAULTS, KEY, NEW, OLD, WRITE_ROUNDS, cases
from tests.support.fault_rig import Rig, ledger_matches_listing, parametrize
from tests.support.helpers import listing

pytestmark = pytest.mark.seaweedfs


def write_failed_cleanly(rig: Rig, before: tuple[int, int], previous: bytes | None) -> None:
    """A failed write-through save: the bucket, this node's view, usage and the ledger
    are as they were."""
    rig.heal()
    assert listing(rig.observer) == before
    assert rig.store.usage()[:2] == before
    if previous is None:
        assert not rig.observer.contains_key(KEY)
        assert not rig.store.contains_key(KEY)
    else:
        assert rig.observer.read_bytes(KEY) == previous
        assert rig.store.read_bytes(KEY) == previous
    ledger_matches_listing(rig)


@parametrize(cases(upload=True, modes=("through",)))
def test_save(rig: Rig) -> None:
    """An overwrite, written through: the PUT of the object is faulted. (A write-behind
    save makes no request: its upload is test_flush's.)"""
    rig.store.save(KEY, OLD)
    check_save(rig)


@parametrize(cases(upload=True, modes=("through",), faults=FAST_FAULTS, once=()))
def test_save_of_a_new_key(rig: Rig) -> None:
    check_save(rig, previous=None)


def check_save(rig: Rig, previous: bytes | None = OLD) -> None:
    before = listing(rig.observer)
    rig.inject("PUT", rig.object_path())
    # A delayed PUT was applied: its lost answer is resolved by a HEAD, and it succeeds.
    ok = not rig.fails or rig.case.fault == "delay"
    result = rig.call(lambda: rig.store.save(KEY, NEW), expect_ok=ok, rounds=WRITE_ROUNDS)
    if ok:
        assert result is True
        assert rig.store.read_bytes(KEY) == NEW
        assert rig.observer.read_bytes(KEY) == NEW
        ledger_matches_listing(rig)
        return
    write_failed_cleanly(rig, before, previous)


@parametrize(
    cases(upload=True, modes=("through",), faults=FAST_FAULTS)
    + cases(upload=True, modes=("behind",), faults=("refused", "cut_upload"), once=())
)
def test_save_of_a_local_file(rig: Rig) -> None:
    """save(key): the file at get_file_path(key) is uploaded at once, in either mode."""
    rig.store.save(KEY, OLD)
    rig.store.flush()
    path = Path(rig.store.get_file_path(KEY))
    path.write_bytes(NEW)
    before = listing(rig.observer)
    rig.inject("PUT", rig.object_path())
    ok = not rig.fails or rig.case.fault == "delay"
    rig.call(lambda: rig.store.save(KEY), expect_ok=ok, rounds=WRITE_ROUNDS)
    if not ok:
        assert rig.observer.read_bytes(KEY) == OLD
        assert listing(rig.observer) == before
        assert path.read_bytes() == NEW  # the user's file is kept, and still pending
        assert rig.store.read_bytes(KEY) == NEW
        rig.heal()
        rig.store.flush()
    assert rig.observer.read_bytes(KEY) == NEW
    ledger_matches_listing(rig)


@parametrize(
    cases(upload=True, modes=("behind",))
    + cases(upload=True, modes=("through",), faults=("reset", "cut_upload", "503"), once=())
)
def test_flush(rig: Rig) -> None:
    """flush() uploads pending saves (write-behind) and changed local files (both modes)."""
    rig.store.save(KEY, OLD)
    rig.store.flush()
    if rig.case.mode == "behind":
        rig.store.save(KEY, NEW)
    else:
        Path(rig.store.get_file_path(KEY)).write_bytes(NEW)
    rig.inject("PUT", rig.object_path())
    ok = not rig.fails or rig.case.fault == "delay"
    rig.call(rig.store.flush, expect_ok=ok, rounds=WRITE_ROUNDS)
    if not ok:
        assert rig.observer.read_bytes(KEY) == OLD  # nothing half-uploaded
        assert rig.store.read_bytes(KEY) == NEW  # the pending work is kept
        if rig.case.mode == "behind":
            assert rig.store._node.local.journal.get(KEY) is not None
        rig.heal()
        rig.store.flush()
    assert rig.observer.read_bytes(KEY) == NEW
    assert rig.store._node.local.journal.get(KEY) is None
    ledger_matches_listing(rig)
