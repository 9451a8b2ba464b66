"""Every public operation under network and server faults, through the fault proxy.

A matrix on SeaweedFS: (operation) x (fault) x (write mode), each fault either persistent
(every matching request, until the test heals the proxy) or transient (the first matching
request only). The proxy's rules pick the one S3 request the case is about (the GET of
the object, not the ledger's; the PUT of the ledger, not the object's), so each case
fails exactly the step it names. For each case:

1. the outcome: a transient fault is retried away and the call returns whole, correct
   data; a persistent one is a `StorageUnavailableError` (an `ObjectStoreError`), never
   a foreign exception; a write whose answer was only delayed (the server applied it)
   is resolved and succeeds;
2. the time: under the bound the README states, computed from the settings below;
3. nothing partial: no value cached, no partial file at the key's path, the bucket, the
   node view, the usage and the ledger as before a failed write; in write-behind the
   pending work is kept and a later flush with the proxy healthy uploads it.

The CLI cases run `python -m objectstore_s3` against the proxy: one line and exit 1.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from objectstore_s3 import (
    ObjectStore,
    ObjectStoreError,
    ObjectStoreSettings,
    StorageUnavailableError,
)
from tests.conftest import BUCKET
from tests.faultproxy import Fault, FaultProxy
from tests.helpers import ledger, listing

pytestmark = pytest.mark.seaweedfs

ROOT = Path(__file__).resolve().parents[1]

# Short timeouts keep the matrix fast; the bound below is computed from them.
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 1.5
MAX_ATTEMPTS = 3
FAST: dict[str, Any] = {
    "connect_timeout_seconds": CONNECT_TIMEOUT,
    "read_timeout_seconds": READ_TIMEOUT,
    "max_attempts": MAX_ATTEMPTS,
}


def request_bound(attempts: int, connect: float, read: float) -> float:
    """One request's worst case in s3client.S3Connection.call: every attempt waits out the
    connect and read timeouts, with the capped exponential backoff between attempts."""
    backoff = sum(min(2.0, 0.1 * 2.0 ** (n - 1)) for n in range(1, attempts))
    return attempts * (connect + read) + backoff


REQUEST = request_bound(MAX_ATTEMPTS, CONNECT_TIMEOUT, READ_TIMEOUT)
# A write whose answer is lost is sent again for at most 3 rounds (commit.py; the
# ledger's update in quota.py likewise), each round one request's worth plus a HEAD.
WRITE_ROUNDS = 3
FAST_FAULTS = ("refused", "reset", "delay", "cut_upload", "500", "503", "slowdown")
SLACK = 2.0  # a noisy 2-core machine: a bound check, not a performance test
FIXED = 3.0  # the requests of a call that succeed, and the store's own work

OLD = os.urandom(48 * 1024)
NEW = os.urandom(64 * 1024)
KEY = "dir/k"

FAULTS: dict[str, Fault | None] = {
    "refused": None,  # the proxy stops listening: every connect is refused
    "reset": Fault.reset(),
    "blackhole": Fault.blackhole(),
    "delay": Fault.delay_response(3 * READ_TIMEOUT),  # applied, answered too late
    "cut_body": Fault.cut_response(100),
    "cut_upload": Fault.cut_upload(100),  # the ledger is ~300 bytes: cut it too
    "500": Fault.internal_error(),
    "503": Fault.service_unavailable(),
    "slowdown": Fault.slow_down(),
}
BODY_FAULTS = {"cut_body"}  # need a response body
UPLOAD_FAULTS = {"cut_upload"}  # need a request body


# Transient faults (once, then healthy) must be retried away: a sample of each kind.
ONCE = ("reset", "blackhole", "cut_body", "cut_upload", "503")


@dataclass(frozen=True)
class Case:
    fault: str
    persistent: bool
    mode: str  # "through" (persistence_interval_seconds=0) or "behind" (3600)

    @property
    def interval(self) -> float:
        return 3600.0 if self.mode == "behind" else 0.0


def cases(
    *,
    body: bool = False,
    upload: bool = False,
    modes: tuple[str, ...] = ("through", "behind"),
    faults: tuple[str, ...] | None = None,
    once: tuple[str, ...] | None = ONCE,
) -> list[Any]:
    """The matrix for one operation: the faults that make sense for its target request
    (`body`: it has a response body; `upload`: a request body), or only `faults`,
    persistent, and transient for those in `once` (None: all; a refused port is all or
    nothing: persistent only), in `modes`."""
    params = []
    for fault in faults or FAULTS:
        if (fault in BODY_FAULTS and not body) or (fault in UPLOAD_FAULTS and not upload):
            continue
        for mode in modes:
            for persistent in (True, False):
                if not persistent and (
                    fault == "refused" or (once is not None and fault not in once)
                ):
                    continue
                case = Case(fault, persistent, mode)
                name = f"{fault}-{'always' if persistent else 'once'}-{mode}"
                params.append(pytest.param(case, id=name))
    return params


# Reads do not depend on the write mode (a pending key is read from the journal, without
# a request): every fault in write-through, a sample in write-behind.
BEHIND_SAMPLE = ("refused", "503")


def read_cases(*, body: bool = False) -> list[Any]:
    return cases(body=body, modes=("through",)) + cases(
        body=body, modes=("behind",), faults=BEHIND_SAMPLE, once=()
    )


class Rig:
    """A store through the proxy, an observer straight to SeaweedFS (what other nodes
    see), and the proxy's switches."""

    def __init__(
        self,
        proxy: FaultProxy,
        make: Callable[..., ObjectStoreSettings],
        case: Case,
    ) -> None:
        self.proxy = proxy
        self.case = case
        self.settings = make(
            endpoint_url=proxy.url, persistence_interval_seconds=case.interval, **FAST
        )
        self.org = self.settings.organization_id
        self._stores: list[ObjectStore] = []
        self.observer = self.open(
            make(cache_dir=self.settings.cache_dir.parent / "observer", cache_revalidate=True)
        )
        self.store = self.open(self.settings)
        # The capability probe and the first quota lease, while the proxy is healthy.
        self.store.save("warm", b"w")
        self.store.flush()

    def open(self, settings: ObjectStoreSettings) -> ObjectStore:
        store = ObjectStore(settings)
        self._stores.append(store)
        return store

    def another_node(self) -> ObjectStore:
        """A second store through the proxy: another cache, no quota lease yet."""
        folder = self.settings.cache_dir.parent / f"node-{uuid.uuid4().hex[:6]}"
        return self.open(
            self.settings.model_copy(update={"cache_dir": folder, "local_root": folder / "l"})
        )

    # -- faults --------------------------------------------------------------------------

    def object_path(self, key: str = KEY) -> str:
        return rf"^/{BUCKET}/{self.org}/{key}$"

    def inject(self, method: str, path: str, query: str | None = None) -> None:
        """The case's fault on the matching requests (all of them, or the first)."""
        fault = FAULTS[self.case.fault]
        if fault is None:
            self.proxy.refuse()
            return
        times = None if self.case.persistent else 1
        self.proxy.add_rule(fault, method=method, path=path, query=query, times=times)

    def heal(self) -> None:
        self.proxy.clear_rules()
        self.proxy.accept()

    def faulted(self) -> int:
        return sum(1 for request in self.proxy.requests if request.fault is not None)

    # -- the call ------------------------------------------------------------------------

    def call(self, operation: Callable[[], Any], *, expect_ok: bool, rounds: int = 1) -> Any:
        """Run `operation`; assert its outcome and its time (`rounds`: how many requests'
        worth of retries the call may spend on the fault). Returns its result, or the
        StorageUnavailableError it raised."""
        started = time.monotonic()
        try:
            result = operation()
        except StorageUnavailableError as exc:
            outcome: Any = exc
        except ObjectStoreError as exc:
            pytest.fail(f"{self.case}: an ObjectStoreError that is not a fault's: {exc!r}")
        except Exception as exc:  # the point: nothing foreign may escape
            pytest.fail(f"{self.case}: a foreign exception escaped: {exc!r}")
        else:
            outcome = result
        elapsed = time.monotonic() - started
        bound = SLACK * (rounds * (REQUEST + CONNECT_TIMEOUT + READ_TIMEOUT)) + FIXED
        assert elapsed < bound, f"{self.case}: {elapsed:.1f} s, over the bound {bound:.1f} s"
        if self.case.fault != "refused":
            assert self.faulted() >= 1, f"{self.case}: the fault was never applied"
        if expect_ok:
            assert not isinstance(outcome, BaseException), f"{self.case}: {outcome!r}"
        else:
            assert isinstance(outcome, StorageUnavailableError), f"{self.case}: {outcome!r}"
        return outcome

    @property
    def fails(self) -> bool:
        """Whether the case's fault outlasts the retries (a delay does not: the write was
        applied, and is resolved by a HEAD; a read just fails)."""
        return self.case.persistent

    def settle(self) -> None:
        for store in self._stores:
            store.flush()

    def close(self) -> None:
        self.heal()
        for store in reversed(self._stores):
            store.close()


@pytest.fixture
def rig(
    request: pytest.FixtureRequest,
    fault_proxy: FaultProxy,
    seaweed_settings: Callable[..., ObjectStoreSettings],
) -> Iterator[Rig]:
    rig = Rig(fault_proxy, seaweed_settings, request.param)
    try:
        yield rig
    finally:
        rig.close()


def parametrize(params: list[Any]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("rig", params, indirect=True)


def ledger_matches_listing(rig: Rig, *, exact: bool = True) -> None:
    """With the proxy healthy: once every store has flushed (settled what it counted),
    the ledger counts what is listed. Not `exact`: a write whose outcome could not be
    told may be over-counted (never under-counted) until a reconcile."""
    rig.heal()
    rig.settle()
    state = ledger(rig.observer)
    counted, listed = (state["bytes"], state["files"]), listing(rig.observer)
    if exact:
        assert counted == listed
        return
    assert all(isinstance(c, int) and c >= n for c, n in zip(counted, listed, strict=True))
    rig.observer.reconcile_usage()
    state = ledger(rig.observer)
    assert (state["bytes"], state["files"]) == listed


LEDGER_PATH = r"^/{bucket}/\.objectstore/{org}/usage\.json$"


# -- regressions ---------------------------------------------------------------------------


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
