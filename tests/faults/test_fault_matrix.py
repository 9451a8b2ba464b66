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
import subprocess
import sys
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
from objectstore_s3.server.seaweedfs import SeaweedServer
from tests.conftest import BUCKET
from tests.support.cli import environment
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.helpers import ledger, listing

pytestmark = pytest.mark.seaweedfs

ROOT = Path(__file__).resolve().parents[2]

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


# -- reads ---------------------------------------------------------------------------------


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


# -- writes --------------------------------------------------------------------------------


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


LEDGER_PATH = r"^/{bucket}/\.objectstore/{org}/usage\.json$"


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


# -- the command line ----------------------------------------------------------------------


def cli_environment(settings: ObjectStoreSettings) -> dict[str, str]:
    return environment(settings) | {
        "OBJECTSTORE_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT),
        "OBJECTSTORE_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
        "OBJECTSTORE_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    }


CLI_CASES = [
    (command, fault, False)
    for command, faults in (
        ("get", ("refused", "blackhole", "cut_body", "500")),
        ("put", ("reset", "cut_upload", "slowdown")),
    )
    for fault in faults
] + [("get", "reset", True), ("put", "503", True)]


@pytest.mark.parametrize(
    ("command", "fault", "debug"),
    [
        pytest.param(*case, id=f"{case[0]}-{case[1]}{'-debug' if case[2] else ''}")
        for case in CLI_CASES
    ],
)
def test_cli_failure_is_one_line_and_exit_1(
    command: str,
    fault: str,
    debug: bool,
    fault_proxy: FaultProxy,
    seaweed: SeaweedServer,
    seaweed_settings: Callable[..., ObjectStoreSettings],
    tmp_path: Path,
) -> None:
    settings = seaweed_settings(endpoint_url=fault_proxy.url)
    with ObjectStore(settings.model_copy(update={"endpoint_url": seaweed.url})) as direct:
        direct.save(KEY, OLD)
    rule = FAULTS[fault]
    if rule is None:
        fault_proxy.refuse()
    else:  # the object's own requests only (a GET also needs its HEAD answered)
        method = "GET" if command == "get" else "PUT"
        path = rf"^/{BUCKET}/{settings.organization_id}/{KEY}$"
        fault_proxy.add_rule(rule, method=method, path=path)
    args = ["--debug"] if debug else []
    args += ["get", KEY, "-o", str(tmp_path / "out")] if command == "get" else ["put", KEY, "-"]
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "objectstore_s3", *args],
        input=NEW,
        capture_output=True,
        env=cli_environment(settings),
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert elapsed < SLACK * WRITE_ROUNDS * (REQUEST + CONNECT_TIMEOUT + READ_TIMEOUT) + 10
    if debug:
        assert "Traceback" in stderr
        assert "StorageUnavailableError" in stderr
    else:
        assert stderr.count("\n") == 1, stderr
        assert stderr.startswith("error: "), stderr
        assert "Traceback" not in stderr
    fault_proxy.clear_rules()
    fault_proxy.accept()
    with ObjectStore(settings.model_copy(update={"endpoint_url": seaweed.url})) as direct:
        assert direct.read_bytes(KEY) == OLD  # a failed put changed nothing
    if command == "get":
        assert not (tmp_path / "out").exists() or (tmp_path / "out").read_bytes() == b""


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
