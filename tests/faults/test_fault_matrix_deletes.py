"""The fault matrix (tests/support/fault_matrix.py) for deletes, written through or
journaled behind; a DELETE that is never answered is not reported done.
"""

from __future__ import annotations

import pytest

from tests.support.fault_matrix import KEY, NEW, WRITE_ROUNDS, Case, cases
from tests.support.fault_rig import Rig, ledger_matches_listing, parametrize

pytestmark = pytest.mark.seaweedfs


@parametrize(
    cases(modes=("through",)) + cases(modes=("behind",), faults=("refused", "blackhole"), once=())
)
def test_delete(rig: Rig) -> None:
    """Write-through: the DELETE is faulted; write-behind journals the delete after a
    HEAD (the key is not cached), so the HEAD is."""
    rig.observer.save(KEY, NEW)
    behind = rig.case.mode == "behind"
    rig.inject("HEAD" if behind else "DELETE", rig.object_path())
    # A delayed DELETE was applied: the key is gone either way.
    ok = not rig.fails or (rig.case.fault == "delay" and not behind)
    result = rig.call(lambda: rig.store.delete(KEY), expect_ok=ok, rounds=WRITE_ROUNDS)
    rig.heal()
    if ok:
        assert result is True
        rig.store.flush()
        assert not rig.observer.contains_key(KEY)
        # A DELETE whose answer was lost: gone, but by whom cannot be told.
        ledger_matches_listing(rig, exact=rig.case.fault != "delay")
        return
    assert rig.observer.read_bytes(KEY) == NEW
    assert rig.store.contains_key(KEY)
    assert rig.store.delete(KEY) is True
    rig.store.flush()
    assert not rig.observer.contains_key(KEY)


@parametrize([pytest.param(Case("reset", True, "through"), id="reset-always")])
def test_a_delete_that_is_never_answered_is_not_reported_done(rig: Rig) -> None:
    """A DELETE that never got an answer (reset, timeout, 500 on every attempt) raised
    OutcomeUnknownError, which the committer took for "gone either way": delete()
    returned True while the object was still in the bucket. Now a HEAD decides."""
    rig.observer.save(KEY, NEW)
    rig.inject("DELETE", rig.object_path())
    rig.call(lambda: rig.store.delete(KEY), expect_ok=False, rounds=WRITE_ROUNDS)
    rig.heal()
    assert rig.observer.read_bytes(KEY) == NEW
    assert rig.store.contains_key(KEY)
