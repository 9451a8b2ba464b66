"""`cp` and `mv` as `aws s3` users know them (issue 22): files to keys and back, folders
to prefixes with --recursive, key to key on the server; `os://` names a key. Subprocesses
against the session's SeaweedFS."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from objectstore_s3.server.seaweedfs import SeaweedServer
from tests.support.cli import Runner, organization_environment, runner

pytestmark = pytest.mark.seaweedfs


@pytest.fixture
def cli(seaweed: SeaweedServer, tmp_path: Path) -> Runner:
    return runner(organization_environment(seaweed, tmp_path), cwd=tmp_path)


def keys(cli: Runner, prefix: str = "") -> list[str]:
    return [item["key"] for item in json.loads(cli("ls", prefix, "--json").stdout)]


def one_error(result: subprocess.CompletedProcess[bytes], code: int) -> str:
    assert result.returncode == code, result
    text = result.stderr.decode()
    assert text.startswith("error: "), text
    assert text.count("\n") == 1, text
    return text


def test_a_file_goes_up_and_comes_back_down(cli: Runner, tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(50_000))
    up = cli("cp", str(model), "os://123/model")
    assert up.returncode == 0, up.stderr
    assert up.stdout.decode() == f"upload: {model} to os://123/model\n"
    assert cli("cp", str(model), "os://123/models/").returncode == 0  # a prefix: its name
    assert keys(cli) == ["123/model", "123/models/model.bin"]
    back = tmp_path / "back.bin"
    down = cli("cp", "os://123/model", str(back))
    assert down.returncode == 0, down.stderr
    assert down.stdout.decode() == f"download: os://123/model to {back}\n"
    assert back.read_bytes() == model.read_bytes()
    folder = tmp_path / "into"
    folder.mkdir()
    assert cli("cp", "os://123/models/model.bin", str(folder)).returncode == 0
    assert (folder / "model.bin").read_bytes() == model.read_bytes()
    nested = tmp_path / "new" / "deeper" / "model.bin"  # folders made as aws s3 cp makes them
    assert cli("cp", "os://123/model", str(nested)).returncode == 0
    assert nested.read_bytes() == model.read_bytes()


def test_a_folder_goes_up_and_down_recursively(cli: Runner, tmp_path: Path) -> None:
    folder = tmp_path / "results"
    (folder / "daily").mkdir(parents=True)
    (folder / "summary.json").write_text('{"sharpe": 1.2}')
    (folder / "daily" / "2024-01-02.csv").write_text("time,value\n1,2\n")
    no_r = cli("cp", str(folder), "os://123/results/")
    assert "--recursive" in one_error(no_r, 2)
    up = cli("cp", "--recursive", str(folder), "os://123/results", "--json")
    assert up.returncode == 0, up.stderr
    report = json.loads(up.stdout)
    assert sorted(action["target"] for action in report["actions"]) == [
        "os://123/results/daily/2024-01-02.csv",
        "os://123/results/summary.json",
    ]
    assert {action["action"] for action in report["actions"]} == {"upload"}
    assert (report["failed"], report["dry_run"]) == ([], False)
    assert keys(cli, "123/") == ["123/results/daily/2024-01-02.csv", "123/results/summary.json"]
    back = tmp_path / "back"
    assert cli("cp", "-r", "os://123/results/", str(back)).returncode == 0
    assert (back / "summary.json").read_text() == '{"sharpe": 1.2}'
    assert (back / "daily" / "2024-01-02.csv").read_text() == "time,value\n1,2\n"


def test_mv_deletes_the_source_once_copied(cli: Runner, tmp_path: Path) -> None:
    results = tmp_path / "results.csv"
    results.write_text("a,b\n")
    moved = cli("mv", str(results), "os://123/results.csv")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.decode().startswith("move: ")
    assert not results.exists()
    assert keys(cli) == ["123/results.csv"]
    assert cli("mv", "os://123/results.csv", str(results)).returncode == 0
    assert results.read_text() == "a,b\n"
    assert keys(cli) == []


def test_a_file_name_that_is_no_key_is_said_and_the_others_go_on(
    cli: Runner, tmp_path: Path
) -> None:
    folder = tmp_path / "storage"
    folder.mkdir()
    (folder / "ok.txt").write_text("fine")
    (folder / "report(1).txt").write_text("parentheses are no key characters")
    result = cli("cp", "-r", str(folder), "os://123/storage/")
    assert "report(1).txt" in one_error(result, 1)
    assert keys(cli) == ["123/storage/ok.txt"]


def test_usage_errors_and_failures_are_one_line(cli: Runner, tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    assert "os://" in one_error(cli("cp", "a", "b"), 2)  # two local paths
    assert "no such file" in one_error(cli("cp", "missing", "os://k"), 1)
    assert "no such key '123/missing'" in one_error(cli("cp", "os://123/missing", "out"), 1)
    assert "Invalid key" in one_error(cli("cp", "a", "os://bad?key"), 2)
    assert "no such folder" in one_error(cli("cp", "-r", "missing/", "os://p/"), 1)
    assert not (tmp_path / "out").exists()


def test_key_to_key_is_a_server_side_copy_and_mv_renames(cli: Runner, tmp_path: Path) -> None:
    cli("put", "123/model", stdin=b"weights v1")
    copied = cli("cp", "os://123/model", "os://123/model-backup")
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout == b"copy: os://123/model to os://123/model-backup\n"
    assert cli("get", "123/model-backup").stdout == b"weights v1"
    cli("put", "123/logs/a.log", stdin=b"a")
    cli("put", "123/logs/b/c.log", stdin=b"c")
    assert cli("mv", "-r", "os://123/logs/", "os://123/archive/").returncode == 0
    assert keys(cli) == [
        "123/archive/a.log",
        "123/archive/b/c.log",
        "123/model",
        "123/model-backup",
    ]
    assert cli("get", "123/archive/b/c.log").stdout == b"c"
    usage = json.loads(cli("du", "--json").stdout)
    assert (usage["files"], usage["bytes"]) == (4, 22)  # the copies are counted
