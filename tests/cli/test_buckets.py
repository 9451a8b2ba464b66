"""`bucket create|status|versioning` (issues 19 and 22) on the session's SeaweedFS: a
bucket of the user's own, its versioning turned on and suspended."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from objectstore_s3.server.seaweedfs import SeaweedServer
from tests.support.cli import Runner, organization_environment, runner

pytestmark = pytest.mark.seaweedfs


@pytest.fixture
def cli(seaweed: SeaweedServer, tmp_path: Path) -> Runner:
    return runner(organization_environment(seaweed, tmp_path), cwd=tmp_path)


def status(cli: Runner, *args: str) -> dict[str, object]:
    result = cli("bucket", "status", *args, "--json")
    assert result.returncode == 0, result.stderr
    found: dict[str, object] = json.loads(result.stdout)
    return found


def test_create_a_bucket_and_see_it(cli: Runner) -> None:
    name = f"cli-{uuid.uuid4().hex[:10]}"
    before = status(cli, name)
    assert (before["bucket"], before["exists"], before["versioning"]) == (name, False, None)
    created = cli("bucket", "create", name)
    assert created.returncode == 0, created.stderr
    assert created.stdout.decode().splitlines()[0] == f"bucket '{name}' created"
    assert "versioning:  off" in created.stdout.decode()
    assert (status(cli, name)["exists"], status(cli, name)["versioning"]) == (True, "off")
    again = cli("bucket", "create", name)
    assert again.returncode == 0
    assert again.stdout.decode().startswith(f"bucket '{name}' exists already")
    assert cli("--bucket", name, "put", "123/a", stdin=b"x").returncode == 0  # usable


def test_versioning_on_off_and_status(cli: Runner) -> None:
    name = f"cli-{uuid.uuid4().hex[:10]}"
    created = json.loads(cli("bucket", "create", name, "--versioned", "--json").stdout)
    assert created["versioning"] == "enabled"
    suspended = cli("bucket", "versioning", "off", name)
    assert suspended.returncode == 0, suspended.stderr
    assert "cannot turn versioning off" in suspended.stdout.decode()
    shown = cli("--bucket", name, "bucket", "versioning", "status", "--json")
    assert json.loads(shown.stdout)["versioning"] == "suspended"
    assert json.loads(cli("bucket", "versioning", "on", name, "--json").stdout)["versioning"] == (
        "enabled"
    )


def test_bucket_usage_errors(cli: Runner) -> None:
    invalid = cli("bucket", "create", "NOT_VALID")
    assert invalid.returncode == 2
    assert invalid.stderr.startswith(b"error: invalid settings: bucket")
    assert cli("bucket", "versioning", "maybe").returncode == 2
    missing = cli("bucket", "versioning", "on", f"cli-missing-{uuid.uuid4().hex[:8]}")
    assert missing.returncode == 1
    assert missing.stderr.count(b"\n") == 1, missing.stderr
    assert b"cli-missing-" in missing.stderr, missing.stderr
