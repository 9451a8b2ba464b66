"""A volume server of a SeaweedFS cluster dies while a write-behind store uploads (issue 21):
no acknowledged save is lost.

The cluster (tests/support/seaweed_cluster.py) keeps every volume on two of its three
volume servers. A store in write-behind mode saves 200 small values and 3 of 1-2 MiB
(seeded): 100 are journaled (the flusher's first round comes 1 s after the store opens),
and the first volume server holding the bucket's writable volume is SIGKILLed, by PID, from inside
the upload of the 40th value to land, while other uploads are in flight and the rest wait
in the journal. The other values are saved after the kill. The store flushes until a
deadline (the polls would absorb the 500s of a cluster whose master has not yet grown a
volume on the two servers left), then a fresh store, with a cache of its own, reads every
key whose save returned True from the servers (the killed server's volumes: from their
copies) with the right bytes.

Observed with SeaweedFS 4.48: no request of the store failed, so no retry, flush retry or
refused save was needed (the test allows them). The master drops the killed server as soon
as its heartbeat stream breaks, the uploads caught by the kill are retried inside SeaweedFS
(the surviving copy of the volume holds needles the killed copy lacks), and a new volume
grows on the two servers left.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreError
from objectstore_s3.transport.boto3.backend import S3Backend
from tests.conftest import BUCKET, store_settings
from tests.support.seaweed_cluster import SeaweedCluster, volume_servers_seen

pytestmark = pytest.mark.seaweedfs

MiB = 1024 * 1024
SMALL, LARGE = 200, 3
KILL_AFTER = 40  # values uploaded before the kill
BEFORE = 100  # values saved before the test waits for the kill; the rest after it
PREFIX = "values/"
FLUSH_DEADLINE = 40.0  # seconds for the store to upload everything after the kill


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SeaweedCluster]:
    """A cluster of this test's own: the session's must keep its three volume servers."""
    with SeaweedCluster(tmp_path / "cluster") as running:
        yield running


def _values() -> dict[str, bytes]:
    """200 small values and 3 of 1-2 MiB, in a seeded order."""
    rng = random.Random(21)
    sizes = [rng.randint(1, 4000) for _ in range(SMALL)]
    sizes += [rng.randint(MiB, 2 * MiB) for _ in range(LARGE)]
    rng.shuffle(sizes)
    return {f"{PREFIX}{index:03d}": rng.randbytes(size) for index, size in enumerate(sizes)}


class KillAfterUploads:
    """Kills a volume server (by PID) from inside the store's upload thread right after
    the `count`-th value under PREFIX has landed, while other uploads are in flight."""

    def __init__(
        self, cluster: SeaweedCluster, victim: int, count: int, saved: Callable[[], int]
    ) -> None:
        self.cluster, self.victim, self.count, self.saved = cluster, victim, count, saved
        self.uploaded = 0
        self.saved_at_kill = 0
        self.killed = threading.Event()
        self.pid: int | None = None
        self._lock = threading.Lock()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = S3Backend.put

        def put(backend: S3Backend, key: str, data: bytes, **kwargs: Any) -> Any:
            info = original(backend, key, data, **kwargs)
            if key.startswith(PREFIX):
                with self._lock:
                    self.uploaded += 1
                    if self.uploaded == self.count:
                        self.saved_at_kill = self.saved()
                        self.pid = self.cluster.kill_volume_server(self.victim)
                        self.killed.set()
            return info

        monkeypatch.setattr(S3Backend, "put", put)


def _flush_until_done(store: ObjectStore, deadline: float) -> list[str]:
    """flush() until it succeeds (the failures, as said); the deadline fails the test."""
    failures: list[str] = []
    while True:
        try:
            store.flush()
            return failures
        except ObjectStoreError as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            assert time.monotonic() < deadline, f"flush still failing: {failures[-3:]}"
            time.sleep(0.2)  # between two polls of the cluster's recovery


def test_killing_a_volume_server_mid_flush_loses_no_acknowledged_save(
    cluster: SeaweedCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    values = _values()
    reported: list[ObjectStoreError] = []
    settings = store_settings(
        tmp_path,
        cluster,
        persistence_interval_seconds=1.0,
        max_attempts=6,
        organization_id="org-cluster-kill",
    )
    with ObjectStore(settings) as setup:
        setup.create_bucket()
        assert setup.save_string("prime", "grows the bucket's first volume")
    holders = cluster.writable_holders(BUCKET)
    assert len(holders) >= 2, holders  # replication 001: each volume on two servers
    acknowledged: dict[str, bytes] = {}
    killer = KillAfterUploads(cluster, holders[0], KILL_AFTER, lambda: len(acknowledged))
    killer.install(monkeypatch)

    refused: dict[str, str] = {}
    store = ObjectStore(settings, on_error=reported.append)
    keys = list(values)
    try:
        for key in keys[:BEFORE]:
            if store.save_bytes(key, values[key]):
                acknowledged[key] = values[key]
        assert killer.killed.wait(30), f"{killer.uploaded} values uploaded, no kill"
        for key in keys[BEFORE:]:  # saved after the kill
            try:
                if store.save_bytes(key, values[key]):
                    acknowledged[key] = values[key]
            except ObjectStoreError as exc:  # not acknowledged: may fail, must say so
                refused[key] = f"{type(exc).__name__}: {exc}"
        flush_failures = _flush_until_done(store, time.monotonic() + FLUSH_DEADLINE)
    finally:
        store.close()
    cluster.wait_for_volume_servers(2, timeout=20)
    assert volume_servers_seen(cluster.master_url) == 2

    fresh = ObjectStore(settings.model_copy(update={"cache_dir": tmp_path / "fresh-cache"}))
    with fresh:
        lost = [key for key, data in acknowledged.items() if fresh.read_bytes(key) != data]
    assert lost == []
    assert len(acknowledged) + len(refused) == len(values)
    assert set(keys[BEFORE:]) & set(acknowledged), "no save after the kill was acknowledged"
    print(  # the run's story, for -s and the CI log of a failure
        f"killed volume{holders[0]} (pid {killer.pid}) after {KILL_AFTER} uploads, "
        f"{killer.saved_at_kill} saves returned then; {len(acknowledged)} "
        f"acknowledged, {len(refused)} refused {sorted(refused.items())[:3]}; "
        f"{len(flush_failures)} failed flushes {flush_failures[:2]}; "
        f"{len(reported)} background errors; {time.monotonic() - started:.1f}s"
    )
