"""The fault matrix's rig (the cases are in fault_matrix.py): a store through the fault
proxy, an observer straight to SeaweedFS, the case's fault injected on the request it
names, and the checks every case makes (outcome, time bound, the ledger at rest); the
`rig` fixture (indirect: its parameter is the case) and `parametrize` for the tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from objectstore_s3 import (
    ObjectStore,
    ObjectStoreError,
    ObjectStoreSettings,
    StorageUnavailableError,
)
from tests.conftest import BUCKET
from tests.support.fault_matrix import (
    CONNECT_TIMEOUT,
    FAST,
    FAULTS,
    FIXED,
    KEY,
    READ_TIMEOUT,
    REQUEST,
    SLACK,
    Case,
)
from tests.support.faultproxy import FaultProxy
from tests.support.helpers import ledger, listing


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
    the ledger counts what is listed, plus at most the maybes it declares (attempts whose
    answers were lost count until their horizon: they might land yet). Not `exact`: a
    delete whose outcome could not be told may be over-counted until a reconcile."""
    rig.heal()
    rig.settle()
    if not exact:
        state = ledger(rig.observer)
        listed = listing(rig.observer)
        assert state["bytes"] >= listed[0]
        assert state["files"] >= listed[1]
        rig.observer.reconcile_usage()
    state = ledger(rig.observer)
    listed_bytes, listed_files = listing(rig.observer)
    maybes: list[list[int]] = state["maybes"]  # type: ignore[assignment]
    assert listed_bytes <= state["bytes"] <= listed_bytes + sum(m[1] for m in maybes)
    assert listed_files <= state["files"] <= listed_files + sum(m[0] for m in maybes)
