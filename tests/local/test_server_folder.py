"""The embedded server's folder (`server_dir`) in a hostile environment (issue 18 break 5):
another local user who could create that folder first, or plant files in it, must neither
point the user's saves at a server of theirs (a state file they wrote) nor make the user
overwrite one of their own files (a symbolic link at a config or log file's name).

Tests run as root in CI: another user is simulated with uid 65534 (nobody).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings, UnsafeFolderError
from objectstore_s3.server.processes import pid_alive
from objectstore_s3.server.seaweedfs import (
    SeaweedServer,
    local_server_status,
    start_local_server,
    stop_local_server,
)

OTHER_UID = 65534
as_root = pytest.mark.skipif(os.getuid() != 0, reason="giving a file away needs root")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[ObjectStoreSettings]:
    """endpoint_url=local with a server_dir of this test; its server is stopped after."""
    values = ObjectStoreSettings(
        endpoint_url="local",
        server_dir=tmp_path / "server",
        cache_dir=tmp_path / "cache",
        local_root=tmp_path / "local",
    )
    yield values
    with contextlib.suppress(UnsafeFolderError):  # a refused folder started no server
        stop_local_server(values)  # by PID, and only this folder's own server


def a_victim_file(tmp_path: Path) -> Path:
    victim = tmp_path / "victims-own-file"
    victim.write_bytes(b"the user's own content\n")
    os.chmod(victim, 0o644)
    return victim


# -- the folder itself --------------------------------------------------------------------


def give_away(folder: Path) -> None:
    folder.mkdir()
    os.chown(folder, OTHER_UID, OTHER_UID)
    os.chmod(folder, 0o755)  # noqa: S103  (others may read, not write: only the owner is wrong)


def open_to_all(folder: Path) -> None:
    folder.mkdir()
    os.chmod(folder, 0o777)  # noqa: S103  (the point of the test)


@pytest.mark.parametrize(
    "plant",
    [pytest.param(give_away, marks=as_root), open_to_all],
    ids=["owned-by-another-user", "writable-by-all"],
)
def test_a_server_dir_someone_else_controls_is_refused(
    settings: ObjectStoreSettings, plant: object
) -> None:
    """Issue 18 break 5: server_dir is checked like cache_dir, by the store, the start,
    the status and the stop alike; the error names the folder and the way out."""
    folder = settings.server_dir
    plant(folder)  # type: ignore[operator]
    for use in (
        lambda: ObjectStore(settings).save("k", "v"),
        lambda: start_local_server(settings),
        lambda: local_server_status(settings),
        lambda: stop_local_server(settings),
    ):
        with pytest.raises(UnsafeFolderError, match=f"server_dir {folder}") as caught:
            use()
        assert "chmod 700" in str(caught.value)
    assert os.listdir(folder) == []  # nothing written into it, no server started


@as_root
def test_a_server_dir_that_is_another_users_link_is_refused(
    settings: ObjectStoreSettings, tmp_path: Path
) -> None:
    """Issue 18 break 5: a symbolic link planted at server_dir's name (in a shared parent)
    is refused even when it points at a folder of the user's: its owner could repoint it."""
    own = tmp_path / "own-folder"
    own.mkdir(mode=0o700)
    settings.server_dir.symlink_to(own)
    os.lchown(settings.server_dir, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeFolderError, match=f"server_dir {settings.server_dir}.*link"):
        start_local_server(settings)
    assert os.listdir(own) == []


# -- the state file -----------------------------------------------------------------------


def state_of(port: int, pid: int, folder: Path) -> bytes:
    """A state file recording a server of `folder` at `port`, run by `pid`."""
    state = {
        "pid": pid,
        "port": port,
        "data_dir": str(folder / "data"),
        "access_key_id": "attacker",
        "secret_access_key": "attackers-secret",
    }
    return json.dumps(state).encode()


def planted_by_another_user(state: Path, content: bytes) -> None:
    state.write_bytes(content)
    os.chown(state, OTHER_UID, OTHER_UID)


def writable_by_all(state: Path, content: bytes) -> None:
    state.write_bytes(content)
    os.chmod(state, 0o666)  # noqa: S103


def a_link_to_a_state_elsewhere(state: Path, content: bytes) -> None:
    elsewhere = state.parent.parent / "planted-state.json"
    elsewhere.write_bytes(content)
    state.symlink_to(elsewhere)


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param(planted_by_another_user, marks=as_root),
        writable_by_all,
        a_link_to_a_state_elsewhere,
    ],
    ids=["owned-by-another-user", "writable-by-all", "symlink"],
)
def test_a_state_file_the_user_did_not_write_is_refused(
    settings: ObjectStoreSettings, plant: object
) -> None:
    """Issue 18 break 5: state.json names the server every save goes to (port and
    credentials); one that another user could have written is refused, never trusted nor
    overwritten in place."""
    folder = settings.server_dir
    folder.mkdir(mode=0o700)
    state = folder / "state.json"
    content = state_of(1, os.getpid(), folder)
    plant(state, content)  # type: ignore[operator]
    for use in (
        lambda: start_local_server(settings),
        lambda: local_server_status(settings),
        lambda: ObjectStore(settings).read("k"),
    ):
        with pytest.raises(UnsafeFolderError, match=f"server state file {state}") as caught:
            use()
        assert "Delete it" in str(caught.value)
    assert state.read_bytes() == content  # left for the user to look at
    assert not (folder / "data").exists()  # no server started


@pytest.mark.seaweedfs
def test_a_state_file_naming_another_folders_server_is_not_used(
    settings: ObjectStoreSettings, seaweed: SeaweedServer
) -> None:
    """Issue 18 break 5: a running SeaweedFS of another folder (here the session's) is
    never taken for this folder's server, even when the user's own state file names it."""
    folder = settings.server_dir
    folder.mkdir(mode=0o700)
    assert seaweed.pid is not None
    assert seaweed.port is not None
    state = json.loads(state_of(seaweed.port, seaweed.pid, folder))
    state["data_dir"] = str(seaweed.data_dir)  # what that server's command line says
    (folder / "state.json").write_text(json.dumps(state))
    os.chmod(folder / "state.json", 0o600)
    assert local_server_status(settings) is None


@as_root
@pytest.mark.seaweedfs
def test_a_server_run_by_another_user_is_not_used(
    settings: ObjectStoreSettings, seaweed: SeaweedServer
) -> None:
    """Issue 18 break 5: a recorded PID that another user runs (with this folder's
    `-dir=` on its command line, and an S3 server answering at the recorded port) is not
    this user's server: the user's values must never go to it."""
    folder = settings.server_dir
    folder.mkdir(mode=0o700)
    impostor = subprocess.Popen(
        ["/bin/sh", "-c", "sleep 120", f"-dir={folder / 'data'}"], user=OTHER_UID
    )
    try:
        assert seaweed.port is not None
        (folder / "state.json").write_bytes(state_of(seaweed.port, impostor.pid, folder))
        os.chmod(folder / "state.json", 0o600)
        assert local_server_status(settings) is None
    finally:
        impostor.kill()
        impostor.wait()


# -- files written into the folder ---------------------------------------------------------


@pytest.mark.seaweedfs
def test_links_planted_at_the_servers_files_are_replaced_never_followed(
    settings: ObjectStoreSettings, tmp_path: Path
) -> None:
    """Issue 18 break 5: the identity (s3.json), master.toml and state.json are written
    owner-only through a new file and a rename, so a link at their names is replaced and the
    file it points to is left alone; the server then starts and serves as usual."""
    victim = a_victim_file(tmp_path)
    data = settings.server_dir / "data"
    data.mkdir(parents=True, mode=0o700)
    for name in ("s3.json", "master.toml"):
        (data / name).symlink_to(victim)
    started = start_local_server(settings)
    assert pid_alive(started.pid)
    assert victim.read_bytes() == b"the user's own content\n"
    assert mode(victim) == 0o644
    for path in (data / "s3.json", data / "master.toml", settings.server_dir / "state.json"):
        assert not path.is_symlink()
        assert mode(path) == 0o600, path
    assert mode(data / "weed.log") == 0o600
    assert mode(settings.server_dir) == mode(data) == 0o700
    with ObjectStore(settings) as store:
        store.save("k", "served")
        assert store.read("k") == "served"
    assert local_server_status(settings) == started


def test_a_link_planted_at_the_servers_log_is_refused(
    settings: ObjectStoreSettings, tmp_path: Path
) -> None:
    """Issue 18 break 5: the server's output is appended to its log; a link at the log's
    name would make it append to the file the link points to."""
    victim = a_victim_file(tmp_path)
    data = settings.server_dir / "data"
    data.mkdir(parents=True, mode=0o700)
    (data / "weed.log").symlink_to(victim)
    with pytest.raises(UnsafeFolderError, match=f"server log {data / 'weed.log'}"):
        start_local_server(settings)
    assert victim.read_bytes() == b"the user's own content\n"
    assert local_server_status(settings) is None
