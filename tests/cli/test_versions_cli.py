"""Versions and safe updates on the command line (issue 19): `versions`, `get --version`,
`restore`, what `rm` says on a versioned bucket, `put --if-match / --if-absent`. On a
versioned bucket of the session's SeaweedFS, and on one without versioning."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from objectstore_s3.server.seaweedfs import SeaweedServer
from tests.support.cli import Runner, organization_environment, runner

pytestmark = pytest.mark.seaweedfs


@pytest.fixture
def plain(seaweed: SeaweedServer, tmp_path: Path) -> Runner:
    """A CLI on the session's bucket, whose versioning is off."""
    return runner(organization_environment(seaweed, tmp_path), cwd=tmp_path)


@pytest.fixture
def cli(seaweed: SeaweedServer, tmp_path: Path) -> Runner:
    """A CLI on a bucket of its own with versioning on (turned on by the CLI)."""
    bucket = f"cli-versions-{uuid.uuid4().hex[:8]}"
    run = runner(organization_environment(seaweed, tmp_path, bucket=bucket), cwd=tmp_path)
    assert run("bucket", "versioning", "on").returncode == 0
    return run


def history(cli: Runner, key: str) -> list[dict[str, Any]]:
    result = cli("versions", key, "--json")
    assert result.returncode == 0, result.stderr
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def one_error(result: subprocess.CompletedProcess[bytes], code: int = 1) -> str:
    assert result.returncode == code, result
    text = result.stderr.decode()
    assert text.startswith("error: "), text
    assert text.count("\n") == 1, text
    return text


def test_roll_back_a_bad_overwrite(cli: Runner, tmp_path: Path) -> None:
    cli("put", "123/model", stdin=b"good model")
    cli("put", "123/model", stdin=b"bad model!")
    found = history(cli, "123/model")
    assert [(v["size"], v["current"], v["deleted"]) for v in found] == [
        (10, True, False),
        (10, False, False),
    ]
    good = found[1]["version_id"]
    text = cli("versions", "123/model").stdout.decode().splitlines()
    assert [line.split()[0] for line in text] == [found[0]["version_id"], good]
    assert text[0].endswith("current")
    assert cli("get", "123/model", "--version", good).stdout == b"good model"
    saved = tmp_path / "old.bin"
    assert cli("get", "123/model", "--version", good, "-o", str(saved)).returncode == 0
    assert saved.read_bytes() == b"good model"
    restored = cli("restore", "123/model", good)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.decode().startswith(f"restored '123/model' to version {good}")
    assert cli("get", "123/model").stdout == b"good model"
    assert len(history(cli, "123/model")) == 3


def test_rm_says_how_to_restore_and_restore_undeletes(cli: Runner) -> None:
    cli("put", "123/params.json", stdin=b'{"fast": 10}')
    removed = cli("rm", "123/params.json")
    assert removed.returncode == 0
    kept = next(v for v in history(cli, "123/params.json") if not v["deleted"])["version_id"]
    assert removed.stderr.decode() == (
        f"'123/params.json' can be restored: `objectstore-s3 restore 123/params.json {kept}` "
        "(its versions: `objectstore-s3 versions 123/params.json`)\n"
    )
    assert history(cli, "123/params.json")[0]["deleted"] is True
    assert cli("restore", "123/params.json", kept, "--json").returncode == 0
    assert cli("get", "123/params.json").stdout == b'{"fast": 10}'


def test_missing_keys_and_versions_are_one_line(cli: Runner) -> None:
    cli("put", "123/a", stdin=b"a")
    assert "no such key '123/missing'" in one_error(cli("versions", "123/missing"))
    assert "no version 'nope' of '123/a'" in one_error(cli("restore", "123/a", "nope"))
    assert "no version 'nope' of '123/a'" in one_error(cli("get", "123/a", "--version", "nope"))


def test_without_versioning_history_is_the_current_value_and_restore_says_how(
    plain: Runner,
) -> None:
    plain("put", "123/a", stdin=b"a")
    assert [v["version_id"] for v in history(plain, "123/a")] == ["null"]
    refused = one_error(plain("restore", "123/a", "some-version"))
    assert "objectstore-s3 bucket versioning on" in refused
    removed = plain("rm", "123/a")
    assert (removed.returncode, removed.stderr) == (0, b"")  # nothing to restore from


def test_put_if_match_and_if_absent(plain: Runner, tmp_path: Path) -> None:
    budget = tmp_path / "risk.json"
    budget.write_text('{"budget": 100}')
    assert plain("put", "123/risk.json", str(budget), "--if-absent").returncode == 0
    etag = json.loads(plain("stat", "123/risk.json", "--json").stdout)["etag"]
    again = one_error(plain("put", "123/risk.json", str(budget), "--if-absent"))
    assert f"exists already (ETag {etag})" in again
    budget.write_text('{"budget": 90}')
    stale = one_error(plain("put", "123/risk.json", str(budget), "--if-match", "0" * 32))
    assert f"its current ETag is {etag}" in stale
    assert plain("get", "123/risk.json").stdout == b'{"budget": 100}'
    assert plain("put", "123/risk.json", str(budget), "--if-match", etag).returncode == 0
    assert plain("get", "123/risk.json").stdout == b'{"budget": 90}'
    gone = one_error(plain("put", "123/new", str(budget), "--if-match", etag))
    assert "'123/new' does not exist" in gone
    both = plain("put", "123/x", str(budget), "--if-match", etag, "--if-absent")
    assert "not both" in one_error(both, 2)
