"""What the command line says to its user (issue 13): help with examples, the version, usage
errors, invalid keys and settings named before any connection, one-line errors with exit
codes. Run against an endpoint where nothing listens."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from objectstore_s3.server.processes import free_ports
from tests.support.cli import (
    Runner,
    fresh_user_environment,
    runner,
    with_terminal_stdin,
)


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
