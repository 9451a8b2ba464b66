"""Shared benchmark plumbing: a SeaweedFS server, a raw boto3 client on it, timing."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from objectstore_s3 import ObjectStore, ObjectStoreSettings
from objectstore_s3.server.seaweedfs import SeaweedServer

BUCKET = "bench"


@contextmanager
def seaweed() -> Iterator[tuple[SeaweedServer, Path]]:
    """A SeaweedFS server in a temporary folder; stopped by PID at the end."""
    with tempfile.TemporaryDirectory(prefix="objectstore-bench-") as folder:
        server = SeaweedServer(Path(folder) / "seaweedfs")
        server.start()
        try:
            yield server, Path(folder)
        finally:
            server.stop(timeout=3)


def settings_for(server: SeaweedServer, folder: Path, **overrides: Any) -> ObjectStoreSettings:
    values: dict[str, Any] = {
        "endpoint_url": server.url,
        "bucket": BUCKET,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
        "organization_id": "bench",
        "cache_dir": folder / "cache",
        "local_root": folder / "local",
    }
    values.update(overrides)
    return ObjectStoreSettings(**values)


def raw_client(server: SeaweedServer) -> Any:
    """boto3 as a user would configure it for this server (same retries and checksums)."""
    return boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def create_bucket(server: SeaweedServer, folder: Path) -> None:
    with ObjectStore(settings_for(server, folder)) as store:
        store.create_bucket()


def median_seconds(action: Callable[[], object], repeat: int, warmup: int = 5) -> float:
    """Median wall time of one call of `action`."""
    for _ in range(warmup):
        action()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def human(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
