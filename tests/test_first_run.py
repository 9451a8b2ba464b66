"""The first five minutes of a new user (issue 13): a fresh HOME, `.env` copied from
`.env.example`, the CLI in subprocesses; and what the CLI says to its user.

Tests marked `seaweedfs` start the embedded server of that user (under its HOME) and stop
it by PID afterwards; the others fail before any connection (usage errors, invalid keys
and settings), against an endpoint where nothing listens.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from objectstore_s3.server.seaweedfs import free_ports
from tests.test_cli import (
    ROOT,
    Runner,
    fresh_user_environment,
    runner,
    stop_servers_under,
    with_terminal_stdin,
)

SECRET = "wJalrXUtnFEMI-not-a-real-secret-K7MDENG"


@dataclass
class User:
    home: Path
    work: Path  # the working directory, holding the copied .env
    env: dict[str, str]
    run: Runner

    @property
    def server_dir(self) -> Path:
        return self.home / ".local" / "share" / "objectstore-s3" / ".server"

    def python(self, code: str, extra: dict[str, str] | None = None) -> str:
        """Run a Python script as this user (in the working directory); its stdout."""
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            env={**self.env, **(extra or {})},
            cwd=self.work,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()


@pytest.fixture
def user(tmp_path: Path) -> Iterator[User]:
    """A new user: empty HOME, `.env` copied from `.env.example` as its header says."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    shutil.copy(ROOT / ".env.example", work / ".env")
    env = fresh_user_environment(home)
    yield User(home, work, env, runner(env, cwd=work))
    stop_servers_under(tmp_path)


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    """A user whose endpoint has nothing listening: any connection would fail slowly."""
    (port,) = free_ports(1)
    env = fresh_user_environment(tmp_path / "home")
    env.update(
        OBJECTSTORE_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        OBJECTSTORE_ACCESS_KEY_ID="k",
        OBJECTSTORE_SECRET_ACCESS_KEY="s",
        OBJECTSTORE_MAX_ATTEMPTS="1",
    )
    return env


@pytest.fixture
def offline(offline_env: dict[str, str], tmp_path: Path) -> Runner:
    return runner(offline_env, cwd=tmp_path)


def one_error_line(result: subprocess.CompletedProcess[bytes]) -> str:
    text = result.stderr.decode()
    assert text.startswith("error: "), text
    assert text.count("\n") == 1, text
    assert "Traceback" not in text
    assert "╭" not in text  # no boxed panel
    return text


# -- the embedded server and settings ------------------------------------------------------


@pytest.mark.seaweedfs
def test_copied_env_example_works_in_a_fresh_home(user: User) -> None:
    first = user.run("put", "123/greeting", stdin=b"hello")
    assert first.returncode == 0, first.stderr
    assert first.stderr.decode().count("starting the embedded S3 server") == 1
    second = user.run("get", "123/greeting")
    assert second.stdout == b"hello"
    assert second.stderr == b""  # the server runs: nothing to say
    assert sorted(path.name for path in user.work.iterdir()) == [".env"]  # no ./~ folder
    assert (user.home / ".cache" / "objectstore-s3").is_dir()
    assert (user.server_dir / "state.json").is_file()


@pytest.mark.seaweedfs
def test_every_local_root_and_cache_dir_shares_one_server(user: User, tmp_path: Path) -> None:
    def node(name: str) -> dict[str, str]:
        return {
            "OBJECTSTORE_LOCAL_ROOT": str(tmp_path / name / "local"),
            "OBJECTSTORE_CACHE_DIR": str(tmp_path / name / "cache"),
        }

    assert user.run("put", "shared", stdin=b"from A", extra=node("a")).returncode == 0
    assert user.run("get", "shared", extra=node("b")).stdout == b"from A"
    pids = {
        json.loads(user.run("server", "status", "--json", extra=node(name)).stdout)["pid"]
        for name in ("a", "b", "c")
    }
    assert len(pids) == 1
    assert len(list(tmp_path.rglob("state.json"))) == 1
    # Two nodes in one script: the documented cache behaviour, and Clear() working.
    printed = user.python(
        f"""
        from objectstore_s3 import ObjectStore, ObjectStoreSettings
        a = ObjectStore(ObjectStoreSettings(local_root={str(tmp_path / "a")!r},
                                            cache_dir={str(tmp_path / "ca")!r}))
        b = ObjectStore(ObjectStoreSettings(local_root={str(tmp_path / "b")!r},
                                            cache_dir={str(tmp_path / "cb")!r}))
        a.save("123", "data from project A")
        b.save("123", "new data from project B")
        print(a.read("123"))
        a.clear()
        print(a.read("123"))
        """
    )
    assert printed.splitlines() == ["data from project A", "new data from project B"]
    assert len(list(tmp_path.rglob("state.json"))) == 1


@pytest.mark.seaweedfs
def test_server_status_shows_pid_port_and_data_folder(user: User) -> None:
    started = json.loads(user.run("server", "start", "--json").stdout)
    status = json.loads(user.run("server", "status", "--json").stdout)
    assert started == status  # the same fields, the same values
    assert set(status) == {"running", "url", "pid", "port", "server_dir"}
    assert status["running"] is True
    assert status["server_dir"] == str(user.server_dir)
    text = user.run("server", "status").stdout.decode()
    for shown in (f"pid:     {status['pid']}", f"port:    {status['port']}", str(user.server_dir)):
        assert shown in text
    stopped = json.loads(user.run("server", "stop", "--json").stdout)
    assert stopped["stopped"] is True
    assert stopped["pid"] == status["pid"]
    assert stopped["seconds"] <= 3
    assert json.loads(user.run("server", "stop", "--json").stdout)["stopped"] is False


@pytest.mark.seaweedfs
def test_local_uses_its_own_credentials_and_says_so_once(user: User) -> None:
    keys = {"OBJECTSTORE_ACCESS_KEY_ID": "AKIAEXAMPLE", "OBJECTSTORE_SECRET_ACCESS_KEY": SECRET}
    put = user.run("put", "k", stdin=b"value", extra=keys)
    assert put.returncode == 0, put.stderr
    assert put.stderr.decode().count("own credentials") == 1
    assert user.run("get", "k", extra=keys).stdout == b"value"
    printed = user.python(
        """
        from objectstore_s3 import ObjectStore
        with ObjectStore() as one, ObjectStore() as two:
            print(one.read("k"), two.read("k"))
        """,
        extra=keys,
    )
    assert printed.strip() == "value value"
    for result in (put, user.run("ls", extra=keys), user.run("server", "status")):
        assert SECRET.encode() not in result.stdout + result.stderr


@pytest.mark.seaweedfs
def test_server_stop_is_fast_says_what_it_does_and_keeps_the_data(user: User) -> None:
    user.python(
        """
        from objectstore_s3 import ObjectStore
        with ObjectStore() as store:
            for number in range(60):
                store.save(f"k/{number}", f"value {number}")
        """
    )
    pid = json.loads(user.run("server", "status", "--json").stdout)["pid"]
    began = time.monotonic()
    stop = user.run("server", "stop")
    took = time.monotonic() - began
    assert took <= 3.0, f"server stop took {took:.1f}s"
    assert f"stopping the embedded S3 server (pid {pid}" in stop.stderr.decode()
    assert stop.stdout.startswith(b"stopped in ")
    assert user.run("server", "status", "--json").stdout.count(b'"running": false') == 1
    again = user.run("get", "k/7")  # starts it again, and says so once
    assert again.stdout == b"value 7"
    assert again.stderr.decode().count("starting the embedded S3 server") == 1
    printed = user.python(
        """
        from objectstore_s3 import ObjectStore
        with ObjectStore() as store:
            print(all(store.read(f"k/{n}") == f"value {n}" for n in range(60)), len(store.keys))
        """
    )
    assert printed.split() == ["True", "60"]


# -- what the command line says ---------------------------------------------------------------

COMMANDS = [
    [],
    ["ls"],
    ["get"],
    ["put"],
    ["rm"],
    ["stat"],
    ["du"],
    ["demo"],
    ["server"],
    ["server", "start"],
    ["server", "stop"],
    ["server", "status"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda words: " ".join(words) or "main")
def test_help_shows_flags_as_flags_and_examples(offline: Runner, command: list[str]) -> None:
    shown = offline(*command, "--help")
    text = shown.stdout.decode()
    assert shown.returncode == 0
    assert "<bool>" not in text
    assert "<str>" not in text
    assert "╭" not in text
    assert "\nExamples:\n" in text
    assert f"objectstore-s3 {' '.join(command)}".strip() in text.split("Examples:")[1]


def test_version(offline: Runner) -> None:
    shown = offline("--version")
    assert shown.returncode == 0
    assert shown.stdout.decode().strip() == "objectstore-s3 0.1.0"


@pytest.mark.parametrize(
    "args",
    [["put"], ["no-such-command"], ["ls", "--jsn"], ["--debug", "true", "ls"], ["get", "a", "b"]],
)
def test_usage_errors_are_one_line_with_exit_code_2(offline: Runner, args: list[str]) -> None:
    result = offline(*args)
    assert result.returncode == 2
    assert "--help" in one_error_line(result)


@pytest.mark.parametrize(
    "args",
    [["get", "bad?key"], ["ls", "../"], ["stat", "../x"], ["rm", "a", "../b"], ["put", "..", "-"]],
)
def test_invalid_keys_exit_2_before_any_connection(offline: Runner, args: list[str]) -> None:
    began = time.monotonic()
    result = offline(*args)
    assert result.returncode == 2
    assert "Invalid key" in one_error_line(result)
    assert time.monotonic() - began < 10


def test_settings_errors_name_their_fields(tmp_path: Path) -> None:
    run = runner(fresh_user_environment(tmp_path / "home"), cwd=tmp_path)
    paired = run("ls", extra={"OBJECTSTORE_ACCESS_KEY_ID": "AKIAEXAMPLE"})
    assert paired.returncode == 2
    line = one_error_line(paired)
    assert "invalid settings: access_key_id and secret_access_key go together" in line
    assert ": :" not in line
    flag = run("--bucket", "NOT_VALID", "ls")
    assert flag.returncode == 2
    assert "bucket (--bucket): must be a DNS-valid bucket name" in one_error_line(flag)
    variable = run("ls", extra={"OBJECTSTORE_BUCKET": "NOT_VALID"})
    assert "bucket (OBJECTSTORE_BUCKET)" in one_error_line(variable)
    unset = run("ls", extra={"OBJECTSTORE_CACHE_DIR": "$NOT_SET_FOR_THIS_TEST/cache"})
    assert "cache_dir (OBJECTSTORE_CACHE_DIR): environment variable NOT_SET_FOR_THIS_TEST" in (
        one_error_line(unset)
    )
    nested = run("ls", extra={"OBJECTSTORE_PERMISSIONS__WRITE": "maybe"})
    assert "permissions.write (OBJECTSTORE_PERMISSIONS__WRITE)" in one_error_line(nested)


def test_put_without_a_source_at_a_terminal_does_not_wait(
    offline_env: dict[str, str], tmp_path: Path
) -> None:
    result = with_terminal_stdin(["put", "123/model"], offline_env, tmp_path)
    assert result.returncode == 2
    assert "objectstore-s3 put KEY -" in one_error_line(result)


def test_get_into_a_missing_folder_names_that_path(offline: Runner) -> None:
    result = offline("get", "123/model", "-o", "/no/such/dir/out.txt")
    assert result.returncode == 1
    line = one_error_line(result)
    assert "cannot write /no/such/dir/out.txt: there is no folder /no/such/dir" in line
