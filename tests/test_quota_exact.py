"""Quotas that hold exactly under any concurrency (issue 10): each way the earlier ledger
let the organization pass its limits, as a named test, and a torture test of processes on
two nodes with answers lost on the way back."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings, StorageUnavailableError
from objectstore_s3.server import SeaweedServer
from tests.conftest import StoreFactory, store_settings
from tests.faultproxy import Fault, FaultProxy
from tests.helpers import ledger, listing, write_ledger
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
        assert ledger(check)["files"] == objects  # what landed was counted, exactly
    # Lost answers were resolved (a HEAD found what was sent): saved, then refused.
    assert results == [True, True, False, False]


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
    from objectstore_s3.quota import LEDGER

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
    settings = direct.model_copy(
        update={"endpoint_url": fault_proxy.url, "read_timeout_seconds": 1.0, "max_attempts": 3}
    )
    # About one PUT in seven is applied and answered too late (the client times out).
    counter = iter(range(10**9))
    fault_proxy.add_rule(
        Fault.delay_response(1.5),
        method="PUT",
        header=lambda headers: next(counter) % 7 == 3,
    )
    peak = {"files": 0, "bytes": 0}
    stop = threading.Event()

    def monitor() -> None:
        with ObjectStore(direct.model_copy(update={"cache_dir": tmp_path / "monitor"})) as view:
            while not stop.is_set():
                try:
                    used_bytes, files = listing(view)
                except StorageUnavailableError:
                    continue  # SeaweedFS answers 500 now and then under this load

                peak["files"] = max(peak["files"], files)
                peak["bytes"] = max(peak["bytes"], used_bytes)
                stop.wait(0.02)

    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    outputs = []
    try:
        workers = []
        for index in range(4):
            node = tmp_path / f"node-{index % 2}"  # two nodes, two processes each
            mode = {"persistence_interval_seconds": 0.3 if index % 2 else 0}
            worker_settings = settings.model_copy(update={"cache_dir": node, **mode})
            workers.append(spawn(worker_settings, "torture", str(rng.randint(0, 10**6)), "12"))
        for worker in workers:
            out, _ = worker.communicate(timeout=300)
            assert worker.returncode == 0
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert peak["files"] <= limit_files, (peak, outputs)
    assert peak["bytes"] <= limit_bytes, (peak, outputs)
    assert sum(out["saved"] for out in outputs) > 0
    with ObjectStore(direct.model_copy(update={"cache_dir": tmp_path / "rest"})) as rest:
        rest.flush()
        state = ledger(rest)
        assert (state["bytes"], state["files"]) == listing(rest), (
            state["drift"],
            state["leases"],
            state["holds"],
            outputs,
        )
        assert set(state["leases"]) <= {rest._core.quota.lease_id}  # every worker gave back
