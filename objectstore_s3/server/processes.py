"""Process and port helpers for the local servers: free loopback ports, starting a server
and waiting until it answers (`launch`), liveness and stopping by PID (never by name),
and a SeaweedFS server's command line and readiness probes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from objectstore_s3.errors import StorageUnavailableError
from objectstore_s3.fs import open_private, pid_alive

__all__ = [
    "WEED_PORT_FLAGS",
    "free_ports",
    "launch",
    "pid_alive",
    "s3_answers",
    "stop_pid",
    "volume_server_registered",
    "weed_server_args",
]

# Every port `weed server` opens, each pinned to a free loopback port.
WEED_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "metricsPort",
)


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def launch(
    argv: Sequence[str],
    ready: Callable[[], bool],
    *,
    name: str,
    timeout: float,
    log_path: Path,
    cwd: Path | None = None,
    grace: float = 10.0,
    interval: float = 0.1,
) -> subprocess.Popen[bytes]:
    """Start `argv` in a session of its own, its output appended to `log_path`, and wait
    until `ready()` says it answers. If it exits first, or has not answered after
    `timeout` seconds (it is then stopped by PID, SIGKILL after `grace`), the
    `StorageUnavailableError` names `name` and the log to read. The log is the user's
    own (`fs.open_private`)."""
    # Owner-only, and never through a symbolic link: a log planted as a link to one of the
    # user's files would make the server append to that file.
    log_fd = open_private(log_path, "server log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(log_fd, "ab") as log:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StorageUnavailableError(
                f"{name} exited with code {process.returncode} while starting; see {log_path}"
            )
        if ready():
            return process
        time.sleep(interval)
    stop_pid(process.pid, grace)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=1)
    raise StorageUnavailableError(f"{name} did not answer within {timeout:.0f}s; see {log_path}")


def volume_server_registered(master_url: str, timeout: float = 1.0) -> bool:
    """True once the master knows a volume server (before that, reads of data fail)."""
    try:
        with urllib.request.urlopen(master_url + "/dir/status", timeout=timeout) as answer:  # noqa: S310
            return bool(json.load(answer)["Topology"]["DataCenters"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def s3_answers(url: str, timeout: float = 1.0) -> bool:
    """True once an HTTP request to the S3 port gets any HTTP answer."""
    try:
        with urllib.request.urlopen(url + "/", timeout=timeout):  # noqa: S310 (loopback URL)
            return True
    except urllib.error.HTTPError:
        return True  # 403 without credentials: the gateway is up
    except (OSError, ValueError):
        return False


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, wait up to `timeout`, then SIGKILL: by PID only."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def weed_server_args(data_dir: Path, config: Path, ports: list[int]) -> list[str]:
    """`weed server`'s arguments: every service on loopback, on the given ports."""
    return [
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data_dir}",
        "-filer",
        "-s3",
        f"-s3.config={config}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-volume.max=200",
        # One volume server: no peer to hand clients to before it stops.
        "-volume.preStopSeconds=0",
        "-master.volumeSizeLimitMB=512",
        "-master.telemetry=false",
        "-iam=false",
        "-webdav=false",
        # Behave like AWS and MinIO: a PUT into a missing bucket is NoSuchBucket.
        "-s3.autoCreateBucket=false",
    ] + [f"-{flag}={port}" for flag, port in zip(WEED_PORT_FLAGS, ports, strict=True)]
