"""`presign KEY [--expires 1h]` (issue 22): a URL that downloads the value without
credentials on SeaweedFS; durations as people write them, S3's 7-day maximum; a clear
error where the backend has no URLs (the in-memory one, run in process)."""

from __future__ import annotations

import functools
import json
import urllib.request
from pathlib import Path

import pytest
import typer

from objectstore_s3 import ObjectStore
from objectstore_s3.cli import session
from objectstore_s3.cli.commands import app
from objectstore_s3.cli.presign import parse_duration
from objectstore_s3.cli.terminal import run
from objectstore_s3.server.seaweedfs import SeaweedServer
from objectstore_s3.transport.memory import MemoryBackend
from tests.support.cli import Runner, organization_environment, runner


@pytest.fixture
def cli(seaweed: SeaweedServer, tmp_path: Path) -> Runner:
    return runner(organization_environment(seaweed, tmp_path), cwd=tmp_path)


def test_durations() -> None:
    assert [parse_duration(text) for text in ("90", "90s", "30m", "1h", "7d", " 2H ")] == [
        90,
        90,
        1800,
        3600,
        604800,
        7200,
    ]
    assert [parse_duration(text) for text in ("", "1w", "-1h", "1.5h", "h")] == [None] * 5


@pytest.mark.seaweedfs
def test_the_url_downloads_the_value_without_credentials(cli: Runner) -> None:
    cli("put", "123/report.html", stdin=b"<h1>backtest</h1>")
    result = cli("presign", "123/report.html")
    assert result.returncode == 0, result.stderr
    url = result.stdout.decode().strip()
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (our own server)
        assert response.read() == b"<h1>backtest</h1>"
    week = json.loads(cli("presign", "os://123/report.html", "--expires", "7d", "--json").stdout)
    assert (week["key"], week["expires_in"]) == ("123/report.html", 604800)
    assert "X-Amz-Expires=604800" in week["url"]


@pytest.mark.seaweedfs
def test_bad_durations_and_missing_keys_are_one_line(cli: Runner) -> None:
    for expires in ("8d", "soon", "0"):
        result = cli("presign", "123/report.html", "--expires", expires)
        assert result.returncode == 2
        assert result.stderr.startswith(f"error: --expires {expires}: ".encode())
    missing = cli("presign", "123/missing")
    assert (missing.returncode, missing.stderr) == (
        1,
        b"error: no such key '123/missing' (see `objectstore-s3 ls`)\n",
    )


def test_a_backend_without_urls_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = MemoryBackend()
    monkeypatch.setattr(session, "ObjectStore", functools.partial(ObjectStore, backend=backend))
    for name, value in {
        "OBJECTSTORE_ENDPOINT_URL": "http://127.0.0.1:9",  # never reached: the backend is given
        "OBJECTSTORE_ACCESS_KEY_ID": "k",
        "OBJECTSTORE_SECRET_ACCESS_KEY": "s",
        "OBJECTSTORE_CACHE_DIR": str(tmp_path / "cache"),
        "OBJECTSTORE_LOCAL_ROOT": str(tmp_path / "local"),
    }.items():
        monkeypatch.setenv(name, value)
    with ObjectStore(backend=backend) as store:  # the same settings as the command's
        store.save("123/a", b"x")
    assert run(typer.main.get_command(app), ["presign", "123/a"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Presigned URLs need an S3 server")
    assert err.count("\n") == 1
