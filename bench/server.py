"""The server under the benchmark and the plainest ways to talk to it.

A SeaweedFS server in a temporary folder, a store's settings and a raw boto3 client on it,
and what a worker process needs to reach the same server. Only boto3 and objectstore_s3
are imported here: the large-file workers import this module and their peak RSS is measured.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from objectstore_s3 import ObjectStore, ObjectStoreSettings
from objectstore_s3.server.seaweedfs import SeaweedServer

BUCKET = "bench"
ROOT = Path(__file__).resolve().parent.parent  # the repository: `bench` imports from here


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


# -- worker processes: the same server, from a JSON spec -------------------------------------


def server_spec(server: SeaweedServer) -> dict[str, Any]:
    """What a worker process needs to reach `server` (see `server_from`)."""
    return {
        "data_dir": str(server.data_dir),
        "port": server.port,
        "key": server.access_key_id,
        "secret": server.secret_access_key,
    }


def server_from(spec: dict[str, Any]) -> SeaweedServer:
    """The running server of `server_spec`, in a worker process (not started again)."""
    return SeaweedServer(
        Path(spec["data_dir"]),
        port=spec["port"],
        access_key_id=spec["key"],
        secret_access_key=spec["secret"],
    )


def pythonpath() -> str:
    """PYTHONPATH for a child process: the repository first, so `-m bench...` imports."""
    return os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def worker_command(module: str, *args: str) -> list[str]:
    """The command line of a worker process: `module` run with `-m` (its env needs `pythonpath`)."""
    return [sys.executable, "-m", module, *args]


def process_env(server: SeaweedServer, folder: Path, **extra: str) -> dict[str, str]:
    """A child process's environment: no OBJECTSTORE_* of ours, the store's settings for
    `server` (organization "procs") instead, and the repository on PYTHONPATH."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("OBJECTSTORE_")}
    env.update(
        PYTHONPATH=pythonpath(),
        OBJECTSTORE_ENDPOINT_URL=server.url,
        OBJECTSTORE_BUCKET=BUCKET,
        OBJECTSTORE_ACCESS_KEY_ID=server.access_key_id,
        OBJECTSTORE_SECRET_ACCESS_KEY=server.secret_access_key,
        OBJECTSTORE_ORGANIZATION_ID="procs",
        OBJECTSTORE_LOCAL_ROOT=str(folder / "local"),
        **extra,
    )
    return env


class Team:
    """Worker processes (`module` run with `--worker`, one JSON spec each) started together:
    each prints "ready" once set up, then answers each command line with one JSON line.
    `command` sends one to all at once (a start barrier) and returns their answers; `close`
    ends stdin and waits, killing by PID a worker that does not end within `timeout`."""

    def __init__(self, module: str, specs: list[dict[str, Any]], env: dict[str, str]) -> None:
        self.workers: list[subprocess.Popen[str]] = []
        for spec in specs:
            self.workers.append(
                subprocess.Popen(
                    worker_command(module, "--worker", json.dumps(spec)),
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        said = self._lines()
        if any(line != "ready" for line in said):
            raise RuntimeError(f"a worker said {said[0]!r}, not 'ready'")

    def command(self, line: str) -> list[dict[str, Any]]:
        for worker in self.workers:
            assert worker.stdin is not None
            worker.stdin.write(line + "\n")
            worker.stdin.flush()
        return [json.loads(answer) for answer in self._lines()]

    def _lines(self) -> list[str]:
        lines = []
        for worker in self.workers:
            assert worker.stdout is not None
            line = worker.stdout.readline()
            if not line:
                raise RuntimeError(f"a worker ended (exit status {worker.wait()})")
            lines.append(line.strip())
        return lines

    def close(self, timeout: float = 120) -> None:
        for worker in self.workers:
            if worker.stdin is not None and not worker.stdin.closed:
                with contextlib.suppress(OSError):  # it has ended already
                    worker.stdin.close()
        for worker in self.workers:
            try:
                worker.wait(timeout)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()

    def __enter__(self) -> Team:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(timeout=120 if exc[0] is None else 5)
