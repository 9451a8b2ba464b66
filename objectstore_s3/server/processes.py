"""Process and port helpers for the local servers: free loopback ports, liveness and
stopping by PID (never by name), and readiness probes of a SeaweedFS server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["free_ports", "pid_alive", "s3_answers", "stop_pid", "volume_server_registered"]


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def pid_alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not: it has exited, unreaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    # Another process's zombie (e.g. a server started by a notebook, stopped by the CLI).
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"
    return True


def volume_server_registered(master_url: str, timeout: float = 1.0) -> bool:
    """True once the master knows a volume server (before that, reads of data fail)."""
    try:
        with urllib.request.urlopen(master_url + "/dir/status", timeout=timeout) as answer:  # noqa: S310
            return bool(json.load(answer)["Topology"]["DataCenters"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def s3_answers(url: str, timeout: float = 1.0) -> bool:
    """True once an HTTP request to the S3 port gets any HTTP answer."""
    try:
        with urllib.request.urlopen(url + "/", timeout=timeout):  # noqa: S310 (loopback URL)
            return True
    except urllib.error.HTTPError:
        return True  # 403 without credentials: the gateway is up
    except (OSError, ValueError):
        return False


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, wait up to `timeout`, then SIGKILL: by PID only."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
