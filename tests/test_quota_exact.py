"""Quotas that hold exactly under any concurrency (issue 10): each way the earlier ledger
let the organization pass its limits, as a named test, and a torture test of processes on
two nodes with answers lost on the way back."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings
from objectstore_s3.errors import OutcomeUnknownError, PreconditionFailedError
from objectstore_s3.quota.transaction import LEDGER
from objectstore_s3.server.seaweedfs import SeaweedServer
from objectstore_s3.transport.base import content_etag
from tests.conftest import StoreFactory, store_settings
from tests.faultproxy import Fault, FaultProxy
from tests.helpers import ledger, listing, write_ledger
from tests.presence import surely_present_peak, writes_under
from tests.worker import ROOT, settings_json, spawn

SettingsFactory = Callable[..., ObjectStoreSettings]


def fill(store: ObjectStore, prefix: str = "fill", limit: int = 10_000) -> int:
    """Save new keys until one is refused; how many were accepted."""
    for index in range(limit):
        if not store.save(f"{prefix}/{index}", "x"):
            return index
    return limit


def at_rest(*stores: ObjectStore) -> None:
    """Flush, settle and release every store (what they did is in the ledger)."""
    for store in stores:
        store.close()


# (a) -----------------------------------------------------------------------------------


def test_two_nodes_deleting_one_key_count_it_once(make_store: StoreFactory, tmp_path: Path) -> None:
    node_a = make_store(storage_file_count=5)
    node_b = make_store(storage_file_count=5, cache_dir=tmp_path / "b")
    node_a.save("k", "v")
    assert node_b.read("k") == "v"  # B knows it exists
    node_a.delete("k")
    node_b.delete("k")  # cached as present: its conditional delete finds it gone
    at_rest(node_a, node_b)
    check = make_store(storage_file_count=5, cache_dir=tmp_path / "check")
    assert (ledger(check)["files"], ledger(check)["bytes"]) == (0, 0)
    assert fill(check) == 5


def test_a_delete_between_the_others_head_and_delete(
    make_store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node_a = make_store(storage_file_count=10)
    node_b = make_store(storage_file_count=10, cache_dir=tmp_path / "b")
    for index in range(10):
        node_a.save(f"k{index}", "v")
    backend = node_b._core.objects
    real_delete = backend.delete

    def delete_after_a(key: str, **kwargs: object) -> None:
        node_a.delete(key)  # A deletes right after B looked
        real_delete(key, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "delete", delete_after_a)
    for index in range(5):
        assert node_b.delete(f"k{index}")
    monkeypatch.undo()
    at_rest(node_a, node_b)
    check = make_store(storage_file_count=10, cache_dir=tmp_path / "check")
    assert listing(check)[1] == 5
    assert ledger(check)["files"] == 5  # each delete counted once
    assert fill(check) == 5
    assert listing(check)[1] == 10


def test_an_overwrite_racing_a_delete_counts_the_new_file(
    make_store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node_a = make_store(storage_file_count=3)
    node_b = make_store(storage_file_count=3, cache_dir=tmp_path / "b")
    node_a.save("k", "v1")
    backend = node_a._core.objects
    real_put = backend.put

    def put_after_b_deleted(key: str, data: bytes, **kwargs: object) -> object:
        if key == "k" and node_b.contains_key("k"):
            node_b.delete("k")
        return real_put(key, data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "put", put_after_b_deleted)
    assert node_a.save("k", "v2")  # planned as an overwrite, landed as a new file
    monkeypatch.undo()
    at_rest(node_a, node_b)
    check = make_store(storage_file_count=3, cache_dir=tmp_path / "check")
    assert (ledger(check)["files"], listing(check)[1]) == (1, 1)
    assert fill(check) == 2


# (b) -----------------------------------------------------------------------------------


def test_a_recount_does_not_subtract_a_live_stores_deletes_twice(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    writer = make_store(storage_file_count=10)
    for index in range(10):
        writer.save(f"k{index}", "v")
    writer.flush()  # settled: the ledger knows the 10
    for index in range(5):
        writer.delete(f"k{index}")  # not settled yet
    other = make_store(storage_file_count=10, cache_dir=tmp_path / "other")
    assert other.reconcile_usage().files == 5  # the listing already lacks them
    writer.flush()  # settles its deletes against that recount
    assert ledger(other)["files"] == 5
    at_rest(writer)
    assert fill(other) == 5
    assert listing(other)[1] == 10


# (c) -----------------------------------------------------------------------------------


@pytest.mark.seaweedfs
def test_saves_whose_answers_were_lost_are_counted(
    seaweed: SeaweedServer, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    direct = store_settings(tmp_path, seaweed, storage_file_count=3)
    with ObjectStore(direct) as setup:
        setup.create_bucket()
        setup.save("seed", "x")  # the ledger exists before the faults start
    settings = direct.model_copy(
        update={"endpoint_url": fault_proxy.url, "read_timeout_seconds": 1.0, "max_attempts": 3}
    )
    organization = settings.organization_id
    # Every object PUT is applied by the server, and its answer comes too late.
    fault_proxy.add_rule(
        Fault.delay_response(2.5),
        method="PUT",
        path=rf"^/{settings.bucket}/{organization}/",
        times=4,
    )
    store = ObjectStore(settings)
    results = []
    for index in range(4):
        try:
            results.append(store.save(f"k{index}", "v"))
        except Exception as exc:
            results.append(type(exc).__name__)
    store.close()
    with ObjectStore(direct.model_copy(update={"cache_dir": tmp_path / "check"})) as check:
        objects = listing(check)[1]
        assert objects <= 3, results
        # What landed was counted; attempts that may still land count until their horizon.
        assert ledger(check)["files"] >= objects
    # Lost answers were resolved (a HEAD found what was sent): each save is saved or refused,
    # and every saved one is there.
    assert results[0] is True
    assert set(results) <= {True, False}
    assert objects == 1 + results.count(True)


# (d) -----------------------------------------------------------------------------------


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
    at_rest(node_a, node_b)
    check = make_store(storage_file_count=3, cache_dir=tmp_path / "check")
    assert listing(check)[1] == 3


# (e) -----------------------------------------------------------------------------------


@pytest.mark.seaweedfs
def test_lease_expiry_is_measured_on_the_servers_clock(
    seaweed_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = seaweed_settings(storage_file_count=40)
    # A node whose clock runs 10 minutes behind keeps saving for ~20 s.
    behind = spawn(settings, "skewed-clock", "behind", "30", "-600")
    with ObjectStore(settings.model_copy(update={"cache_dir": tmp_path / "other"})) as other:
        saved_here = 0
        for index in range(30):
            saved_here += other.save(f"other/{index}", "v")
            time.sleep(0.3)
    out, _ = behind.communicate(timeout=120)
    assert behind.returncode == 0
    saved_there = int(out.strip().splitlines()[-1])
    with ObjectStore(settings.model_copy(update={"cache_dir": tmp_path / "check"})) as check:
        assert listing(check)[1] == saved_here + saved_there <= 40
        assert ledger(check)["files"] == listing(check)[1]


# (g) -----------------------------------------------------------------------------------


@pytest.mark.seaweedfs
def test_usage_is_the_organizations_now_from_any_node_or_process(
    seaweed_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = seaweed_settings()
    node_a = ObjectStore(settings)
    for index in range(3):
        node_a.save_bytes(f"k{index}", b"x" * 100)
    node_b = ObjectStore(settings.model_copy(update={"cache_dir": tmp_path / "b"}))
    assert node_b.usage()[:2] == (300, 3)  # before A settled anything
    du = subprocess.run(
        [sys.executable, "-m", "objectstore_s3", "du", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **_env(settings)},
        timeout=120,
        check=True,
    )
    usage = json.loads(du.stdout)
    assert (usage["bytes"], usage["files"]) == (300, 3)
    for key in node_b.keys:
        node_b.delete(key)
    node_a.close()
    node_b.close()
    with ObjectStore(settings.model_copy(update={"cache_dir": tmp_path / "c"})) as check:
        assert (ledger(check)["bytes"], ledger(check)["files"]) == (0, 0)


def _env(settings: ObjectStoreSettings) -> dict[str, str]:
    values = json.loads(settings_json(settings))
    env = {}
    for name in ("endpoint_url", "bucket", "organization_id", "access_key_id"):
        env[f"OBJECTSTORE_{name.upper()}"] = str(values[name])
    env["OBJECTSTORE_SECRET_ACCESS_KEY"] = values["secret_access_key"]
    env["OBJECTSTORE_CACHE_DIR"] = str(Path(values["cache_dir"]).parent / "cli")
    return env


# (h) -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        {"leases": {"x": {"bytes": 1, "files": 1}}},  # a lease without its expiry
        {"leases": {"x": {"bytes": 1, "files": 1, "expires": "soon"}}},
        {"bytes": 1e400},
        {"files": -5.5, "bytes": "many"},
        [1, 2, 3],
    ],
    ids=["no-expiry", "string-expiry", "infinite-bytes", "bad-counts", "not-an-object"],
)
def test_a_ledger_of_nonsense_is_rebuilt_from_a_listing(
    make_store: StoreFactory, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(storage_file_count=5)
    for index in range(3):
        store.save(f"k{index}", "vv")
    store.flush()
    state = ledger(store)
    if isinstance(damage, dict):
        state.update(damage)
        write_ledger(store, state)
    else:
        put_ledger_raw(store, json.dumps(damage).encode())
    other = make_store(storage_file_count=5)
    assert other.save("k3", "vv")  # no raw KeyError / TypeError / OverflowError
    assert other.usage()[:2] == (8, 4)
    assert "damaged" in caplog.text
    other.flush()
    assert fill(other) == 1


def put_ledger_raw(store: ObjectStore, body: bytes) -> None:
    from objectstore_s3.quota.transaction import LEDGER

    store._core.quota._records.put(LEDGER, body)


# (i) -----------------------------------------------------------------------------------


@pytest.mark.seaweedfs
def test_killed_writers_leave_most_of_the_free_capacity_usable(
    seaweed_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = seaweed_settings(storage_file_count=3000)
    writers = [spawn(settings, "save-and-wait", f"w{index}", "1") for index in range(20)]
    try:
        for writer in writers:
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "saved"
    finally:
        for writer in writers:
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait(timeout=30)
    started = time.monotonic()
    with ObjectStore(settings.model_copy(update={"cache_dir": tmp_path / "after"})) as after:
        state = ledger(after)
        reserved = sum(lease["files"] for lease in state["leases"].values())
        free = 3000 - 20
        assert reserved <= 0.1 * free, reserved
        # Fill what is usable now, with the dead leases not yet reclaimed.
        usable = sum(after.save_bytes(f"after/{index}", b"") for index in range(free))
    assert usable >= 0.9 * free
    assert time.monotonic() - started < 60 * 3


# (j) -----------------------------------------------------------------------------------


class LateLanding:
    """A write whose answer is lost and that the server applies only later: after the
    store has looked and found it missing (a slow server, a request stuck in a queue)."""

    def __init__(self, backend: object, key: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
        self.backend = backend
        self.key = key
        self.armed = False
        self.stashed: tuple[str, bytes, dict[str, object]] | None = None
        self.looks_left = 0
        self.real_put = backend.put  # type: ignore[attr-defined]
        self.real_get = backend.get  # type: ignore[attr-defined]
        self.real_head = backend.head  # type: ignore[attr-defined]
        monkeypatch.setattr(backend, "put", self.put)
        monkeypatch.setattr(backend, "get", self.get)
        monkeypatch.setattr(backend, "head", self.head)

    def arm(self, looks: int = 1) -> None:
        """The next write of the key is lost; it lands after `looks` more reads of it."""
        self.armed, self.looks_left = True, looks

    def land(self) -> None:
        if self.stashed is not None:
            key, data, kwargs = self.stashed
            self.stashed = None
            with contextlib.suppress(PreconditionFailedError):
                self.real_put(key, data, **kwargs)

    def put(self, key: str, data: bytes, **kwargs: object) -> object:
        self.land()
        if self.armed and (self.key is None or key == self.key):
            self.armed = False
            self.stashed = (key, bytes(data), kwargs)
            raise OutcomeUnknownError("lost on the way back", content_etag(data))
        return self.real_put(key, data, **kwargs)

    def _look(self, key: str) -> None:
        if self.stashed is not None and self.stashed[0] == key:
            if self.looks_left == 0:
                self.land()
            self.looks_left -= 1

    def get(self, key: str, **kwargs: object) -> object:
        self._look(key)
        return self.real_get(key, **kwargs)

    def head(self, key: str) -> object:
        self._look(key)
        return self.real_head(key)


def test_a_ledger_update_that_lands_after_it_was_looked_for_is_not_counted_twice(
    make_store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(storage_file_count=10)
    for index in range(6):
        store.save(f"k{index}", "v")
    store.flush()  # the ledger holds the 6
    for index in range(3):
        store.delete(f"k{index}")  # unsettled: -3
    late = LateLanding(store._core.quota._records, LEDGER, monkeypatch)
    late.arm()  # the settling update is lost, looked for (not there), then lands
    store.flush()
    monkeypatch.undo()
    at_rest(store)
    check = make_store(storage_file_count=10, cache_dir=tmp_path / "check")
    assert listing(check)[1] == 3
    assert ledger(check)["files"] == 3  # the deletes were subtracted once
    assert fill(check) == 7
    assert listing(check)[1] == 10


def test_a_release_that_lands_after_it_was_looked_for_is_not_counted_twice(
    make_store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(storage_file_count=10)
    for index in range(6):
        store.save(f"k{index}", "v")
    store.flush()
    for index in range(3):
        store.delete(f"k{index}")
    late = LateLanding(store._core.quota._records, LEDGER, monkeypatch)
    late.arm()  # closing settles the deletes and gives the lease back: lost, then lands
    store.close()
    monkeypatch.undo()
    check = make_store(storage_file_count=10, cache_dir=tmp_path / "check")
    state = ledger(check)
    assert (state["files"], listing(check)[1]) == (3, 3)
    assert store._core.quota.lease_id not in state["leases"]  # type: ignore[operator]
    assert fill(check) == 7


def test_an_overwrite_that_lands_after_it_was_looked_for_is_counted(
    make_store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(storage_limit_bytes=1000)
    store.save_bytes("k", b"x" * 10)
    late = LateLanding(store._core.objects, "k", monkeypatch)
    late.arm()  # lost; a HEAD finds the old object; it lands before the retry
    assert store.save_bytes("k", b"y" * 600)
    monkeypatch.undo()
    at_rest(store)
    check = make_store(storage_limit_bytes=1000, cache_dir=tmp_path / "check")
    assert check.read_bytes("k") == b"y" * 600
    # Counted, and kept through the quiet recount at close: it might have landed later.
    assert ledger(check)["bytes"] >= listing(check)[0] == 600
    assert not check.save_bytes("other", b"z" * 500)  # 600 + 500 would pass the limit


@pytest.mark.seaweedfs
@pytest.mark.parametrize("transport", ["boto3", "obstore"])
def test_a_timed_out_create_that_lands_after_a_delete_is_counted(
    seaweed: SeaweedServer, fault_proxy: FaultProxy, tmp_path: Path, transport: str
) -> None:
    direct = store_settings(tmp_path, seaweed, storage_file_count=2, transport=transport)
    with ObjectStore(direct) as setup:
        setup.create_bucket()
        setup.save("seed", "x")
        setup.delete("seed")  # the ledger exists; the bucket is empty
    settings = direct.model_copy(
        update={"endpoint_url": fault_proxy.url, "read_timeout_seconds": 1.0, "max_attempts": 3}
    )
    path = rf"^/{settings.bucket}/{settings.organization_id}/k$"
    fault_proxy.add_rule(Fault.deliver_late(3.0), method="PUT", path=path, times=1)
    store = ObjectStore(settings)
    other = ObjectStore(direct.model_copy(update={"cache_dir": tmp_path / "other"}))
    assert store.save("k", "v")  # the first attempt timed out; the second one created k
    assert other.delete("k")  # counted: -1
    store._core.quota.settle()
    assert other.reconcile_usage().files >= 1  # a recount before the late attempt lands

    # The first attempt reaches the server now: k is absent, so If-None-Match lets it in.
    def late(proxy: FaultProxy) -> list[int | None]:
        return [r.status for r in proxy.requests if r.fault == "deliver_late"]

    fault_proxy.wait_for(lambda proxy: late(proxy) != [None], timeout=10)
    assert late(fault_proxy) == [200]
    assert ledger(other)["files"] >= listing(other)[1] == 1  # with both stores live
    at_rest(store, other)
    with ObjectStore(direct.model_copy(update={"cache_dir": tmp_path / "check"})) as check:
        assert check.read("k") == "v"
        assert ledger(check)["files"] >= listing(check)[1] == 1
        fill(check)
        assert listing(check)[1] <= 2  # the recreated k counts against the limit of 2


def test_drift_is_repaired_within_ten_minutes_while_other_stores_are_live(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    store = make_store(storage_file_count=10)
    for index in range(4):
        store.save(f"k{index}", "v")
    store.flush()
    other = make_store(storage_file_count=10, cache_dir=tmp_path / "other")
    assert other.save("o", "v")  # a live lease: the organization is never quiet
    other.flush()
    state = ledger(store)
    state.update(files=9, drift=True)  # over-counted by 4 (answers lost, say)
    write_ledger(store, state)
    store._core.quota.renew()
    assert ledger(store)["files"] == 9  # recounted 1 s ago: the over-count waits
    state = ledger(store)
    state["rebased_at"] = float(state["rebased_at"]) - 601  # type: ignore[arg-type]
    write_ledger(store, state)
    store._core.quota.renew()
    repaired = ledger(store)
    assert (repaired["files"], repaired["drift"]) == (5, False)
    assert other._core.quota.lease_id in repaired["leases"]  # type: ignore[operator]
    at_rest(store, other)
    check = make_store(cache_dir=tmp_path / "check")
    assert (ledger(check)["files"], listing(check)[1]) == (5, 5)


# torture ---------------------------------------------------------------------------------


@pytest.mark.seaweedfs
def test_torture_processes_on_two_nodes_with_lost_answers(
    seaweed: SeaweedServer, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    seed = int(os.environ.get("TORTURE_SEED", "20261201"))
    rng = random.Random(seed)
    limit_files, limit_bytes = 12, 3000
    direct = store_settings(
        tmp_path, seaweed, storage_file_count=limit_files, storage_limit_bytes=limit_bytes
    )
    with ObjectStore(direct) as setup:
        setup.create_bucket()
        prefix = setup._core.objects.prefix  # type: ignore[attr-defined]
    settings = direct.model_copy(
        update={"endpoint_url": fault_proxy.url, "read_timeout_seconds": 1.0, "max_attempts": 3}
    )
    # About one PUT in seven is applied and answered too late (the client times out), and
    # one in eleven reaches the server only after the client gave it up.
    answered_late, applied_late = iter(range(10**9)), iter(range(10**9))
    fault_proxy.add_rule(
        Fault.delay_response(1.5),
        method="PUT",
        header=lambda headers: next(answered_late) % 7 == 3,
    )
    fault_proxy.add_rule(
        Fault.deliver_late(1.5),
        method="PUT",
        header=lambda headers: next(applied_late) % 11 == 5,
    )
    outputs = []
    workers = []
    for index in range(4):
        node = tmp_path / f"node-{index % 2}"  # two nodes, two processes each
        mode = {"persistence_interval_seconds": 0.3 if index % 2 else 0}
        worker_settings = settings.model_copy(update={"cache_dir": node, **mode})
        workers.append(spawn(worker_settings, "torture", str(rng.randint(0, 10**6)), "12"))
    try:
        for worker in workers:
            out, _ = worker.communicate(timeout=300)
            assert worker.returncode == 0
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait(timeout=30)
    # What surely existed at once, from the proxy's log (a listing is no snapshot: one
    # taken while the workers ran counted a delete behind it and a create ahead of it).
    writes = writes_under(fault_proxy.requests, direct.bucket, prefix)
    assert sum(write.applied for write in writes) > 50
    peak = surely_present_peak(writes)
    assert peak.files <= limit_files, (peak, outputs)
    assert peak.bytes <= limit_bytes, (peak, outputs)
    assert sum(out["saved"] for out in outputs) > 0
    with ObjectStore(direct.model_copy(update={"cache_dir": tmp_path / "rest"})) as rest:
        rest.flush()
        state = ledger(rest)
        listed = listing(rest)
        assert state["bytes"] >= listed[0], (state, outputs)  # never under the truth
        assert state["files"] >= listed[1], (state, outputs)
        assert set(state["leases"]) <= {rest._core.quota.lease_id}  # every worker gave back
        # Writes whose answers were lost count until their horizon (they might land yet);
        # past it, a recount trusts the listing alone, and it is exact.
        deadline = time.monotonic() + 180
        while ledger(rest)["maybes"]:
            assert time.monotonic() < deadline, ledger(rest)["maybes"]
            time.sleep(1.0)  # the horizon is on the server's clock: poll it
            rest.reconcile_usage()
        state = ledger(rest)
        assert (state["bytes"], state["files"]) == listing(rest) == listed, (state, outputs)


def test_a_recount_keeps_a_maybe_until_its_horizon_then_trusts_the_listing() -> None:
    from objectstore_s3.quota.ledger import Ledger

    book = Ledger(files=3, bytes=30, maybes=[(1, 10, 100.0), (2, 20, 50.0)])
    book = Ledger.parse(book.dump())  # kept in the ledger as written
    book.rebase(listed_bytes=5, listed_files=1, server_low=60.0)
    # The write that may land until 100 may be missing from a listing begun at 60.
    assert (book.files, book.bytes, book.maybes, book.drift) == (2, 15, [(1, 10, 100.0)], True)
    book.rebase(listed_bytes=15, listed_files=2, server_low=101.0)
    assert (book.files, book.bytes, book.maybes, book.drift) == (2, 15, [], False)
