"""The first five minutes of a new user (issue 13): a fresh HOME, `.env` copied from
`.env.example`, the CLI in subprocesses. Each test starts the embedded server of that user
(under its HOME) and stops it by PID afterwards. What the CLI says is in test_messages.py.
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

from tests.support.cli import (
    ROOT,
    Runner,
    fresh_user_environment,
    runner,
    stop_servers_under,
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
