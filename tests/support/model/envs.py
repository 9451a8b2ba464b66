"""Where the model test's stores live (tests/model/test_model.py): an `Env` gives each
example its folders, settings, the stores of its two nodes, and what the bucket and the
ledger hold: `MemoryEnv` (the in-memory backend on a clock the test drives), `S3Env` (a
real server, SeaweedFS), `ObstoreEnv` (the same through the obstore transport), `MotoEnv`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from objectstore_s3 import KeyNotFoundError, ObjectStore, ObjectStoreError, ObjectStoreSettings
from objectstore_s3.quota import LEDGER
from objectstore_s3.server.seaweedfs import SeaweedServer
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket

ORG = "org-model"


class FakeClock:
    """The in-memory server's clock: each step is a distinct, non-integral moment."""

    def __init__(self) -> None:
        self.now = 1_000_000.1

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += 1.25


class Env:
    """Where the stores of one example live: backend, folders, settings."""

    strict = True
    folders = False  # the server keeps folders as entries (see model.FolderRefused)

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="model-"))
        self.organization = f"{ORG}-{uuid.uuid4().hex[:8]}"

    def settings(self, node: int, mode: str) -> ObjectStoreSettings:
        values: dict[str, Any] = {
            "endpoint_url": "http://127.0.0.1:9",
            "access_key_id": "k",
            "secret_access_key": "s",
            "organization_id": self.organization,
            "cache_dir": self.folder / f"node{node}" / "cache",
            "local_root": self.folder / f"node{node}" / "local",
            "persistence_interval_seconds": 3600 if mode == "behind" else 0,
            "max_attempts": 1,
        }
        return ObjectStoreSettings(**{**values, **self.connection()})

    def connection(self) -> dict[str, Any]:
        """Endpoint, bucket and credentials, for the backends that need them."""
        return {}

    def open(
        self, node: int, mode: str, on_error: Callable[[ObjectStoreError], None]
    ) -> ObjectStore:
        raise NotImplementedError

    def tick(self) -> None:
        """Let time pass between steps."""

    def objects(self) -> dict[str, bytes]:
        raise NotImplementedError

    def ledger(self) -> dict[str, Any] | None:
        return None

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class MemoryEnv(Env):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.bucket = MemoryBucket(clock=self.clock)

    def open(
        self, node: int, mode: str, on_error: Callable[[ObjectStoreError], None]
    ) -> ObjectStore:
        return ObjectStore(
            self.settings(node, mode), on_error=on_error, backend=MemoryBackend(self.bucket)
        )

    def tick(self) -> None:
        self.clock.tick()

    def objects(self) -> dict[str, bytes]:
        prefix = self.organization + "/"
        return {
            name[len(prefix) :]: item.body
            for name, item in self.bucket.objects.items()
            if name.startswith(prefix)
        }

    def ledger(self) -> dict[str, Any] | None:
        item = self.bucket.objects.get(f".objectstore/{self.organization}/{LEDGER}")
        return None if item is None else dict(json.loads(item.body))


class S3Env(Env):
    """A real S3 server (or moto): the clock is the server's own."""

    strict = False
    folders = True  # SeaweedFS

    def __init__(self, server: SeaweedServer | None = None) -> None:
        super().__init__()
        self.server = server
        self.bucket = "model-tests"

    def connection(self) -> dict[str, Any]:
        assert self.server is not None
        return {
            "endpoint_url": self.server.url,
            "access_key_id": self.server.access_key_id,
            "secret_access_key": self.server.secret_access_key,
            "bucket": self.bucket,
        }

    def open(
        self, node: int, mode: str, on_error: Callable[[ObjectStoreError], None]
    ) -> ObjectStore:
        store = ObjectStore(self.settings(node, mode), on_error=on_error)
        if not hasattr(self, "raw"):
            store.create_bucket()
            self.raw = store._connection()
        return store

    def objects(self) -> dict[str, bytes]:
        scope = self.raw.scoped(self.organization + "/")
        found = {}
        for info in scope.list():
            data = scope.get(info.key)
            assert data is not None
            found[info.key] = data.body
        return found

    def ledger(self) -> dict[str, Any] | None:
        try:
            data = self.raw.scoped(f".objectstore/{self.organization}/").get(LEDGER)
        except KeyNotFoundError:
            return None
        assert data is not None
        return dict(json.loads(data.body))


class ObstoreEnv(S3Env):
    """A real S3 server through the obstore transport."""

    def connection(self) -> dict[str, Any]:
        return {**super().connection(), "transport": "obstore"}


class MotoEnv(S3Env):
    folders = False

    def __init__(self) -> None:
        from moto import mock_aws

        super().__init__()
        self.mock = mock_aws()
        self.mock.start()

    def connection(self) -> dict[str, Any]:
        return {
            "endpoint_url": "https://s3.amazonaws.com",
            "access_key_id": "testing",
            "secret_access_key": "testing",
            "bucket": self.bucket,
        }

    def close(self) -> None:
        self.mock.stop()
        super().close()


def check_at_rest(env: Env, bucket: dict[str, Any], *, exact: bool) -> None:
    """At rest the bucket equals the model's (`bucket`: key -> object with a `value`);
    with `exact` (no crash or interrupt happened) the ledger equals a listing too, every
    write's effect having been counted exactly (no recount was needed)."""
    objects = env.objects()
    assert objects == {key: obj.value for key, obj in bucket.items()}
    state = env.ledger()
    if state is not None and exact:
        assert (state["files"], state["bytes"]) == (
            len(objects),
            sum(len(body) for body in objects.values()),
        )
