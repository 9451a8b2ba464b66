"""Process and port helpers for the local servers: free loopback ports, starting a server
and waiting until it answers (`launch`), liveness and stopping by PID (never by name),
and a SeaweedFS server's command line, configuration and readiness probes."""

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
from objectstore_s3.fs import atomic_write, open_private, pid_alive

__all__ = [
    "WEED_PORT_FLAGS",
    "connected_processes",
    "free_ports",
    "launch",
    "pid_alive",
    "s3_answers",
    "stop_pid",
    "volume_server_registered",
    "weed_server_args",
    "write_weed_config",
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


# Grow one volume at a time (SeaweedFS's default of seven, or six per replica set, lets the
# first bucket take every volume).
_MASTER_TOML = "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 1\ncopy_3 = 1\ncopy_other = 1\n"


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


def connected_processes(port: int, *, besides: int | None = None) -> list[int]:
    """PIDs of the user's processes (not this one, nor `besides`) with a connection open to
    `port` on this machine: the stores using a local server (a store keeps its connections
    open between requests). Read from /proc; an empty list where there is none (macOS)."""
    sockets: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                remote, state, uid, inode = fields[2], fields[3], fields[7], fields[9]
                ours = state == "01" and int(uid) == os.getuid()  # established, the user's
                if ours and int(remote.rpartition(":")[2], 16) == port:
                    sockets.add(f"socket:[{inode}]")
    found = []
    for entry in Path("/proc").iterdir() if sockets else ():
        if not entry.name.isdigit() or int(entry.name) in (os.getpid(), besides):
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in sockets for fd in (entry / "fd").iterdir()):
                found.append(int(entry.name))
    return sorted(found)


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
    """`weed server`'s arguments: every service on loopback, on the given ports. Its own
    logs go to `data_dir/logs` (glog's default is the system's temporary folder), rotated
    and at most a few files per severity; errors also reach stderr (the server log). The
    master's metadata stays in `data_dir/master` (its default, `m<port>`, would make a new
    folder each time a restart gets another port)."""
    return [
        f"-logdir={data_dir / 'logs'}",
        "-alsologtostderr=false",
        "-log_max_files=3",
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data_dir}",
        f"-master.dir={data_dir / 'master'}",
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


def write_weed_config(data_dir: Path, access_key_id: str, secret_access_key: str) -> Path:
    """A SeaweedFS data folder's configuration, owner-only: the `master.toml` a master
    started in `data_dir` reads, and the S3 gateway's one identity in `s3.json` (its path
    is returned, for `-s3.config`)."""
    atomic_write(data_dir / "master.toml", _MASTER_TOML.encode())
    config = data_dir / "s3.json"
    credentials = {"accessKey": access_key_id, "secretKey": secret_access_key}
    actions = ["Admin", "Read", "Write", "List", "Tagging"]
    identity = {"name": "objectstore", "credentials": [credentials], "actions": actions}
    atomic_write(config, json.dumps({"identities": [identity]}).encode())
    return config
