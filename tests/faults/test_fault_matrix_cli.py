"""The fault matrix (tests/support/fault_matrix.py) for the command line: `python -m
objectstore_s3` against the proxy fails with one line and exit 1 (a traceback with
--debug), in bounded time, and a failed put changes nothing.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings
from objectstore_s3.server.seaweedfs import SeaweedServer
from tests.conftest import BUCKET
from tests.support.cli import environment
from tests.support.fault_matrix import (
    CONNECT_TIMEOUT,
    FAULTS,
    KEY,
    MAX_ATTEMPTS,
    NEW,
    OLD,
    READ_TIMEOUT,
    REQUEST,
    SLACK,
    WRITE_ROUNDS,
)
from tests.support.faultproxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.seaweedfs


def cli_environment(settings: ObjectStoreSettings) -> dict[str, str]:
    return environment(settings) | {
        "OBJECTSTORE_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT),
        "OBJECTSTORE_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
        "OBJECTSTORE_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    }


CLI_CASES = [
    (command, fault, False)
    for command, faults in (
        ("get", ("refused", "blackhole", "cut_body", "500")),
        ("put", ("reset", "cut_upload", "slowdown")),
    )
    for fault in faults
] + [("get", "reset", True), ("put", "503", True)]


@pytest.mark.parametrize(
    ("command", "fault", "debug"),
    [
        pytest.param(*case, id=f"{case[0]}-{case[1]}{'-debug' if case[2] else ''}")
        for case in CLI_CASES
    ],
)
def test_cli_failure_is_one_line_and_exit_1(
    command: str,
    fault: str,
    debug: bool,
    fault_proxy: FaultProxy,
    seaweed: SeaweedServer,
    seaweed_settings: Callable[..., ObjectStoreSettings],
    tmp_path: Path,
) -> None:
    settings = seaweed_settings(endpoint_url=fault_proxy.url)
    with ObjectStore(settings.model_copy(update={"endpoint_url": seaweed.url})) as direct:
        direct.save(KEY, OLD)
    rule = FAULTS[fault]
    if rule is None:
        fault_proxy.refuse()
    else:  # the object's own requests only (a GET also needs its HEAD answered)
        method = "GET" if command == "get" else "PUT"
        path = rf"^/{BUCKET}/{settings.organization_id}/{KEY}$"
        fault_proxy.add_rule(rule, method=method, path=path)
    args = ["--debug"] if debug else []
    args += ["get", KEY, "-o", str(tmp_path / "out")] if command == "get" else ["put", KEY, "-"]
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "objectstore_s3", *args],
        input=NEW,
        capture_output=True,
        env=cli_environment(settings),
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert elapsed < SLACK * WRITE_ROUNDS * (REQUEST + CONNECT_TIMEOUT + READ_TIMEOUT) + 10
    if debug:
        assert "Traceback" in stderr
        assert "StorageUnavailableError" in stderr
    else:
        assert stderr.count("\n") == 1, stderr
        assert stderr.startswith("error: "), stderr
        assert "Traceback" not in stderr
    fault_proxy.clear_rules()
    fault_proxy.accept()
    with ObjectStore(settings.model_copy(update={"endpoint_url": seaweed.url})) as direct:
        assert direct.read_bytes(KEY) == OLD  # a failed put changed nothing
    if command == "get":
        assert not (tmp_path / "out").exists() or (tmp_path / "out").read_bytes() == b""
