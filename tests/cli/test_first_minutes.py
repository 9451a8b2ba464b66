"""A newcomer's first minutes, again (issue 22): a mistyped bucket on the embedded server
(point 2), an unreachable server (point 4), `du` when the ledger and a listing disagree
(point 6), the command line in scripts (point 8), and `ls --long` (point 9). Subprocesses,
as a user runs them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, StorageUnavailableError
from objectstore_s3.cli.listing import human_size
from objectstore_s3.quota import Ledger
from objectstore_s3.server import seaweedfs as server_module
from objectstore_s3.server.processes import free_ports
from objectstore_s3.server.seaweedfs import SeaweedServer
from objectstore_s3.settings import ObjectStoreSettings
from tests.conftest import store_settings
from tests.support.cli import (
    ROOT,
    Runner,
    environment,
    fresh_user_environment,
    runner,
    stop_servers_under,
)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Runner]:
    """A CLI on endpoint_url=local with a server_dir of this test; its server stopped after."""
    env = fresh_user_environment(tmp_path / "home")
    env.update(
        OBJECTSTORE_ENDPOINT_URL="local",
        OBJECTSTORE_SERVER_DIR=str(tmp_path / "server"),
        OBJECTSTORE_CACHE_DIR=str(tmp_path / "cache"),
        OBJECTSTORE_LOCAL_ROOT=str(tmp_path / "local"),
    )
    yield runner(env, cwd=tmp_path)
    stop_servers_under(tmp_path)


@pytest.fixture
def settings(seaweed: SeaweedServer, tmp_path: Path) -> ObjectStoreSettings:
    values = store_settings(tmp_path, seaweed, organization_id=f"cli-{uuid.uuid4().hex[:8]}")
    with ObjectStore(values) as store:
        store.create_bucket()
    return values


@pytest.fixture
def cli(settings: ObjectStoreSettings, tmp_path: Path) -> Runner:
    return runner(environment(settings), cwd=tmp_path)


def offline_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    (port,) = free_ports(1)  # nothing listens there
    env = fresh_user_environment(tmp_path / "home")
    env.update(OBJECTSTORE_ENDPOINT_URL=f"http://127.0.0.1:{port}", OBJECTSTORE_MAX_ATTEMPTS="1")
    env.update(extra)
    return env


# -- point 2: a mistyped bucket on the embedded server --------------------------------------


@pytest.mark.seaweedfs
def test_a_mistyped_bucket_on_the_embedded_server_is_an_error_naming_it(local: Runner) -> None:
    assert local("put", "123/a", stdin=b"kept").returncode == 0  # the default bucket: made
    for args in (["ls"], ["put", "123/b", "-"], ["get", "123/a"]):
        result = local("--bucket", "typo", *args, stdin=b"lost")
        assert result.returncode == 1, result
        line = result.stderr.decode()
        assert line.count("\n") == 1, line
        assert "Bucket 'typo' does not exist on the embedded S3 server" in line
        assert "`objectstore-s3 bucket create typo`" in line
    assert local("ls").stdout == b"123/a\n"  # the put above went nowhere


# -- point 4: an unreachable server ---------------------------------------------------------


def test_an_unreachable_server_without_keys_is_said_to_be_unreachable(tmp_path: Path) -> None:
    env = offline_environment(tmp_path)
    result = runner(env, cwd=tmp_path)("ls")
    assert result.returncode == 1
    line = result.stderr.decode()
    assert line.startswith(f"error: Cannot reach the S3 endpoint {env['OBJECTSTORE_ENDPOINT_URL']}")
    assert "Check that the server is running" in line


def test_a_write_to_an_unreachable_server_names_no_internal_key(tmp_path: Path) -> None:
    env = offline_environment(
        tmp_path, OBJECTSTORE_ACCESS_KEY_ID="k", OBJECTSTORE_SECRET_ACCESS_KEY="s"
    )
    result = runner(env, cwd=tmp_path)("put", "123/model", "-", stdin=b"x")
    assert result.returncode == 1
    line = result.stderr.decode()
    assert line.startswith("error: Could not save '123/model': Cannot reach the S3 endpoint")
    assert "probe/" not in line, line


# -- point 6: du says why it differs from du --reconcile ------------------------------------


@pytest.mark.seaweedfs
def test_du_shows_what_is_pending_when_the_ledger_differs(
    cli: Runner, settings: ObjectStoreSettings
) -> None:
    assert cli("put", "123/a", stdin=b"12345").returncode == 0
    assert json.loads(cli("du", "--json").stdout)["pending"] is None  # they agree
    until = time.time() + 300
    with ObjectStore(settings) as store:  # a write whose answer was lost: a maybe

        def lost(ledger: Ledger, state: object) -> None:
            ledger.maybes.append((1, 7, until))
            ledger.files += 1
            ledger.bytes += 7

        store._parts.quota.book.update(lost)
    usage = json.loads(cli("du", "--json").stdout)
    assert (usage["files"], usage["bytes"]) == (1, 5)  # the listing
    pending = usage["pending"]
    assert (pending["ledger_files"], pending["ledger_bytes"]) == (2, 12)
    assert (pending["maybe_writes"], pending["maybe_files"], pending["maybe_bytes"]) == (1, 1, 7)
    assert datetime.fromisoformat(pending["maybe_until"]).timestamp() == pytest.approx(until)
    text = cli("du").stdout.decode()
    assert "(the listing: 1 files, 5 bytes)" in text
    assert "1 writes whose answer was lost may still land (+1 files, +7 bytes)" in text
    assert "du --reconcile" in text
    # The recount keeps the maybe until its horizon: the two figures differ by it, said.
    reconciled = json.loads(cli("du", "--reconcile", "--json").stdout)
    assert (reconciled["files"], reconciled["pending"]["maybe_writes"]) == (2, 1)


# -- point 8: scripts ---------------------------------------------------------------------------


@pytest.mark.seaweedfs
def test_a_closed_pipe_is_not_an_error(cli: Runner, settings: ObjectStoreSettings) -> None:
    for key in ("a", "b"):
        assert cli("put", key, stdin=b"x").returncode == 0
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before a line is written: `| head -0`
    process = subprocess.run(
        [sys.executable, "-m", "objectstore_s3", "ls", "--long"],
        stdout=writer,
        stderr=subprocess.PIPE,
        env=environment(settings),
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    os.close(writer)
    assert (process.returncode, process.stderr) == (0, b"")


@pytest.mark.seaweedfs
def test_json_commands_print_their_errors_as_json(cli: Runner) -> None:
    missing = cli("stat", "123/missing", "--json")
    assert (missing.returncode, missing.stdout) == (1, b"")
    said = json.loads(missing.stderr)  # one object on one line, nothing else
    assert said == {
        "error": "no such key '123/missing' (see `objectstore-s3 ls`)",
        "key": "123/missing",
    }
    usage = cli("ls", "--json", "--bogus")
    assert usage.returncode == 2
    assert "no such option: --bogus" in json.loads(usage.stderr)["error"]
    assert cli("stat", "123/missing").stderr.startswith(b"error: no such key")  # text without


def test_a_mistyped_command_reads_as_one_sentence(tmp_path: Path) -> None:
    result = runner(offline_environment(tmp_path), cwd=tmp_path)("list")
    assert result.returncode == 2
    assert result.stderr == (
        b"error: no such command 'list'; did you mean 'ls'? (see `objectstore-s3 --help`)\n"
    )


def test_a_missing_binary_is_said_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(server_module, "_weed_candidates", lambda: [])
    monkeypatch.setattr(server_module.shutil, "which", lambda name: None)
    said: list[str] = []
    with pytest.raises(StorageUnavailableError, match=r"needs the SeaweedFS binary"):
        server_module.start_local_server(
            ObjectStoreSettings(server_dir=tmp_path / "server"), report=said.append
        )
    assert said == []  # no "starting the embedded S3 server" first


# -- point 9: ls --long -------------------------------------------------------------------------


@pytest.mark.seaweedfs
def test_ls_long_aligns_columns_with_human_sizes_and_time_zones(
    cli: Runner, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (3 * 1024 * 1024 + 512 * 1024))
    assert cli("put", "123/big", str(big)).returncode == 0
    assert cli("put", "123/small-one", stdin=b"12345").returncode == 0
    lines = cli("ls", "-lh", extra={"TZ": "Asia/Kolkata"}).stdout.decode().splitlines()
    assert [line.split()[:2] for line in lines] == [["3.5", "MiB"], ["5", "B"]]
    assert len({line.index("123/") for line in lines}) == 1  # the key column lines up
    assert len({line.index(" 20") for line in lines}) == 1  # and so does the time column
    assert all(re.search(r" \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0530 ", line) for line in lines)
    exact = cli("ls", "--long").stdout.decode().splitlines()
    assert [line.split()[0] for line in exact] == [str(big.stat().st_size), "5"]
    assert b"Usage:" in cli("ls", "--help").stdout


def test_sizes_are_shown_in_binary_units() -> None:
    assert [human_size(n) for n in (5, 1536, 20 * 1024**2, 3 * 1024**4)] == [
        "5 B",
        "1.5 KiB",
        "20.0 MiB",
        "3.0 TiB",
    ]
