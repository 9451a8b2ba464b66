"""The fault matrix (tests/support/fault_matrix.py) for the quota ledger a save reads and
writes first: faults there refuse the save in either mode, and a ledger update that is
never answered is given up in bounded time.
"""

from __future__ import annotations

import pytest

from tests.conftest import BUCKET
from tests.support.fault_matrix import (
    KEY,
    LEDGER_PATH,
    MAX_ATTEMPTS,
    NEW,
    WRITE_ROUNDS,
    Case,
    cases,
)
from tests.support.fault_rig import Rig, ledger_matches_listing, parametrize
from tests.support.helpers import listing

pytestmark = pytest.mark.seaweedfs


@parametrize(
    cases(upload=True, modes=("through",))
    + cases(upload=True, modes=("behind",), faults=("reset", "cut_upload"), once=())
)
def test_save_with_a_faulty_ledger_write(rig: Rig) -> None:
    check_ledger_fault(rig, "PUT")


@parametrize(
    cases(body=True, modes=("through",), faults=("reset", "blackhole", "cut_body", "503"))
    + cases(body=True, modes=("behind",), faults=("503",), once=())
)
def test_save_with_a_faulty_ledger_read(rig: Rig) -> None:
    check_ledger_fault(rig, "GET")


def check_ledger_fault(rig: Rig, method: str) -> None:
    """A store without a lease yet reads and writes the ledger before the save: faults
    there refuse the save in either mode (write-behind cannot accept what it cannot
    count), and nothing is written or counted."""
    node = rig.another_node()
    before = listing(rig.observer)
    rig.inject(method, LEDGER_PATH.format(bucket=BUCKET, org=rig.org))
    # A delayed ledger PUT was applied: its nonce tells the store it landed.
    ok = not rig.fails or (rig.case.fault == "delay" and method == "PUT")
    result = rig.call(lambda: node.save(KEY, NEW), expect_ok=ok, rounds=WRITE_ROUNDS)
    rig.heal()
    if ok:
        assert result is True
        node.flush()
        assert rig.observer.read_bytes(KEY) == NEW
        ledger_matches_listing(rig)
        return
    assert listing(rig.observer) == before
    assert not node.contains_key(KEY)
    assert node._node.local.journal.get(KEY) is None
    ledger_matches_listing(rig)


@parametrize([pytest.param(Case("500", True, "through"), id="500-always")])
def test_a_ledger_update_that_is_never_answered_is_given_up_in_bounded_time(rig: Rig) -> None:
    """A ledger PUT that failed with an answer that may have been applied (a 500, a
    timeout) used to be retried for up to 60 rounds (the bound for races between
    writers), each of max_attempts requests: minutes with the default timeouts. Now a
    lost answer counts as a failed round like commit.py's, at most 3 of them."""
    node = rig.another_node()
    rig.inject("PUT", LEDGER_PATH.format(bucket=BUCKET, org=rig.org))
    rig.call(lambda: node.save(KEY, NEW), expect_ok=False, rounds=WRITE_ROUNDS)
    puts = [r for r in rig.proxy.requests if r.method == "PUT" and r.fault is not None]
    assert len(puts) == WRITE_ROUNDS * MAX_ATTEMPTS
