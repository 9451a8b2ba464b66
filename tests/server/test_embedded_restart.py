"""The embedded server (endpoint_url=local) stopped under a process that is saving (issue 22,
point 5): the process's store finds the server gone, starts it again the way the first
store did, and retries, once; `objectstore-s3 server stop` says which processes have
stores using it. Real processes, on a private server_dir."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from objectstore_s3.server.processes import pid_alive
from tests.support.cli import ROOT, Runner, fresh_user_environment, runner, stop_servers_under

pytestmark = pytest.mark.seaweedfs

SAVER = textwrap.dedent(
    """
    import json, sys
    from objectstore_s3 import ObjectStore, ObjectStoreError
    failed = []
    with ObjectStore() as store:
        for i in range({count}):
            if i == {pause}:
                print("paused", flush=True)
                sys.stdin.readline()  # the server is stopped meanwhile
            try:
                if not store.save_string(f"{{i:04d}}", str(i)):
                    failed.append(i)
            except ObjectStoreError as exc:
                failed.append(f"{{i}}: {{exc}}")
    print(json.dumps(failed), flush=True)
    """
)


@pytest.fixture
def user(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A user on endpoint_url=local with a server_dir of this test; its server stopped after."""
    env = fresh_user_environment(tmp_path / "home")
    env.update(
        OBJECTSTORE_ENDPOINT_URL="local",
        OBJECTSTORE_SERVER_DIR=str(tmp_path / "server"),
        OBJECTSTORE_CACHE_DIR=str(tmp_path / "cache"),
        OBJECTSTORE_LOCAL_ROOT=str(tmp_path / "local"),
    )
    yield env
    stop_servers_under(tmp_path)


def saver(env: dict[str, str], count: int, pause: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SAVER.format(count=count, pause=pause)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
        text=True,
    )


def test_a_saving_process_starts_the_stopped_server_again(user: dict[str, str]) -> None:
    cli: Runner = runner(user)
    process = saver(user, count=300, pause=100)
    assert process.stdout is not None
    assert process.stdin is not None
    assert process.stdout.readline() == "paused\n", process.stderr
    first = json.loads(cli("server", "status", "--json").stdout)
    stopped = cli("server", "stop")
    assert stopped.stdout.startswith(b"stopped in "), stopped.stderr
    # It says that a store of the user is using the server, naming its process.
    assert f"stores in process {process.pid} are connected".encode() in stopped.stderr
    assert not pid_alive(first["pid"])
    out, err = process.communicate("go\n", timeout=240)
    assert process.returncode == 0, err
    assert json.loads(out.splitlines()[-1]) == []  # no save failed
    assert err.count("The embedded S3 server was gone") == 1, err
    again = json.loads(cli("server", "status", "--json").stdout)
    assert again["running"] is True
    assert again["pid"] != first["pid"]
    listed = json.loads(cli("ls", "--json").stdout)
    assert [item["key"] for item in listed] == [f"{i:04d}" for i in range(300)]


def test_server_stop_json_names_the_processes_using_it(user: dict[str, str]) -> None:
    cli: Runner = runner(user)
    process = saver(user, count=2, pause=1)
    assert process.stdout is not None
    assert process.stdout.readline() == "paused\n"
    stopped = json.loads(cli("server", "stop", "--json").stdout)
    assert stopped["stopped"] is True
    assert stopped["used_by"] == [process.pid]
    out, err = process.communicate("go\n", timeout=240)
    assert json.loads(out.splitlines()[-1]) == [], err
    # Nothing uses the restarted server once that process has ended.
    assert json.loads(cli("server", "stop", "--json").stdout)["used_by"] == []
