"""One run's setting: the server, the raw clients on it, and the stores the sections open."""

from __future__ import annotations

import collections
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minio import Minio
from obstore.store import S3Store

from bench.measure import Action, Scale
from bench.server import BUCKET, raw_client, settings_for
from objectstore_s3 import ObjectStore
from objectstore_s3.server.seaweedfs import SeaweedServer

BIG = {"storage_file_count": 10**9, "storage_limit_bytes": 10**14}  # quota on, never hit


@dataclass
class Bench:
    """The server of one run, boto3, obstore and minio on it, and every store opened
    through `store` (closed by `close`)."""

    server: SeaweedServer
    folder: Path
    scale: Scale
    boto: Any = field(init=False)
    obs: S3Store = field(init=False)
    minio: Minio = field(init=False)
    opened: list[ObjectStore] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.boto = raw_client(self.server)
        self.obs = S3Store(
            BUCKET,
            endpoint=self.server.url,
            region="us-east-1",
            access_key_id=self.server.access_key_id,
            secret_access_key=self.server.secret_access_key,
            client_options={"allow_http": True},
        )
        self.minio = Minio(
            f"127.0.0.1:{self.server.port}",
            access_key=self.server.access_key_id,
            secret_key=self.server.secret_access_key,
            secure=False,
            region="us-east-1",
        )

    def store(self, name: str, **overrides: Any) -> ObjectStore:
        """A store with its own cache folder (diskcache keeps size_limit in the folder)."""
        values = {
            **BIG,
            "organization_id": name,
            "cache_dir": self.folder / "caches" / name,
            **overrides,
        }
        store = ObjectStore(settings_for(self.server, self.folder, **values))
        self.opened.append(store)
        return store

    def put_raw(self, keys: list[str], payload: bytes) -> None:
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda key: self.boto.put_object(Bucket=BUCKET, Key=key, Body=payload), keys
                )
            )

    def close(self) -> None:
        for store in self.opened:
            try:
                store.close()
            except Exception as exc:
                print(f"(closing a store: {exc})", file=sys.stderr)


class Requests:
    """Counts the requests one store sends (the backend's on_request hook)."""

    def __init__(self, store: ObjectStore) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        store._connection().on_request(  # type: ignore[attr-defined]
            lambda operation, key: self.counts.update([operation])
        )

    def total(self) -> int:
        return sum(self.counts.values())


def counted(action: Callable[[], object], calls: list[int]) -> Action:
    def run() -> object:
        calls[0] += 1
        return action()

    return run


def minio_get(client: Minio, key: str) -> bytes:
    response = client.get_object(BUCKET, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()
