"""Running the command line in subprocesses as a user would: its environment from settings or
a fresh HOME, a runner, a terminal as stdin, and stopping the embedded servers a test started."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from objectstore_s3 import ObjectStoreSettings
from objectstore_s3.server.processes import stop_pid
from objectstore_s3.server.seaweedfs import STOP_GRACE_SECONDS, SeaweedServer

ROOT = Path(__file__).resolve().parents[2]


Runner = Callable[..., subprocess.CompletedProcess[bytes]]


def environment(settings: ObjectStoreSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBJECTSTORE_", "AWS_"))}
    env.update(
        {
            "OBJECTSTORE_ENDPOINT_URL": settings.endpoint_url,
            "OBJECTSTORE_BUCKET": settings.bucket,
            "OBJECTSTORE_ORGANIZATION_ID": settings.organization_id,
            "OBJECTSTORE_CACHE_DIR": str(settings.cache_dir),
            "OBJECTSTORE_LOCAL_ROOT": str(settings.local_root),
        }
    )
    if settings.access_key_id and settings.secret_access_key:
        env["OBJECTSTORE_ACCESS_KEY_ID"] = settings.access_key_id
        env["OBJECTSTORE_SECRET_ACCESS_KEY"] = settings.secret_access_key.get_secret_value()
    return env


def runner(env: dict[str, str], cwd: Path = ROOT) -> Runner:
    def run(
        *args: str, stdin: bytes = b"", extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "objectstore_s3", *args],
            input=stdin,
            capture_output=True,
            env={**env, **(extra or {})},
            cwd=cwd,
            timeout=300,
            check=False,
        )

    return run


def fresh_user_environment(home: Path) -> dict[str, str]:
    """The environment of a new user: nothing of ours or AWS's set, an empty HOME."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OBJECTSTORE_", "AWS_", "XDG_", "MPLCONFIGDIR"))
    }
    env["HOME"] = str(home)
    return env


def stop_servers_under(folder: Path) -> None:
    """Stop, by PID, every embedded server whose state file is under `folder`."""
    for state_file in folder.rglob("state.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            stop_pid(json.loads(state_file.read_text())["pid"], STOP_GRACE_SECONDS)


def with_terminal_stdin(
    args: list[str], env: dict[str, str], cwd: Path, typed: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with a terminal (a pty) as its stdin, typing `typed` into it."""
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "objectstore_s3", *args],
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    os.close(secondary)
    try:
        if typed:
            os.write(main, typed)
        out, err = process.communicate(timeout=60)
    finally:
        os.close(main)
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def organization_environment(
    server: SeaweedServer, tmp_path: Path, **overrides: object
) -> dict[str, str]:
    """The environment of a CLI on a test server (SeaweedFS), with an organization of its
    own and the bucket created."""
    from objectstore_s3 import ObjectStore
    from tests.conftest import store_settings

    organization = f"cli-{os.urandom(4).hex()}"
    settings = store_settings(tmp_path, server, organization_id=organization, **overrides)
    with ObjectStore(settings) as store:
        store.create_bucket()
    return environment(settings)
