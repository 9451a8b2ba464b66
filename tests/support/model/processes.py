"""The machinery of the multi-process model test (tests/model/test_processes.py): the
worker processes (tests/support/model/procworker.py) and the rig that keeps them across
examples, the environments they run on, and the reference model's processes.

Each worker is a real process (`python -m tests.support.model.procworker`), started once
per test function and reused by every example (each example opens fresh stores: a new
organization, new folders). A killed worker is replaced by a spare started ahead of time,
so a SIGKILL costs an example a store's opening, not an interpreter's start.

In the model, each process is a `Node` of its own (its write-behind journal is its own),
and the processes of one node share one cache dict (they share the node's cache).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from objectstore_s3.node.connect import open_backend
from objectstore_s3.server.seaweedfs import SeaweedServer
from tests.support.model.envs import Env, MemoryEnv, S3Env
from tests.support.model.node import Node
from tests.support.model.organization import Model
from tests.support.model.shared_backend import BucketServer
from tests.support.worker import settings_json

ROOT = Path(__file__).resolve().parents[3]
PROCESSES = 4  # two on each of two nodes: process p runs on node p // 2
LOCK_TIMEOUT = 0.05  # the workers' cache lock timeout: a held lock costs little time
ANSWER_TIMEOUT = 60.0
HOLD_LIMIT = 3.0  # a held cache lock is let go after this long, whatever the store does


class WorkerFailed(Exception):
    """A worker died, hung, or failed in its own code (not the store's)."""


class WorkerProcess:
    """One worker: a process and the connection its commands go through."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.model.procworker", str(theirs.fileno())],
            cwd=ROOT,
            pass_fds=[theirs.fileno()],
        )
        theirs.close()
        self.connection = Connection(ours.detach())
        self.ready = False

    def call(self, *command: Any) -> dict[str, Any]:
        self._wait_ready()
        self.connection.send(command)
        reply = self._receive()
        if "failure" in reply:
            raise WorkerFailed(f"worker {self.process.pid} on {command[0]}: {reply['failure']}")
        return reply

    def _receive(self) -> dict[str, Any]:
        if not self.connection.poll(ANSWER_TIMEOUT):
            os.kill(self.process.pid, signal.SIGUSR1)  # its threads' stacks, on stderr
            self.connection.poll(2.0)
            raise WorkerFailed(f"worker {self.process.pid} gave no answer in {ANSWER_TIMEOUT}s")
        try:
            reply: dict[str, Any] = self.connection.recv()
        except EOFError as exc:
            raise WorkerFailed(f"worker {self.process.pid} died") from exc
        return reply

    def _wait_ready(self) -> None:
        if not self.ready:
            assert self._receive() == {"ready": self.process.pid}
            self.ready = True

    def kill(self) -> None:
        """SIGKILL, as the kernel's OOM killer or `kill -9` would; reaped."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self.connection.close()

    def stop(self) -> None:
        try:
            self.connection.send(("exit",))
            self.process.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class Workers:
    """The processes of a test function, and one spare for the next kill."""

    def __init__(self) -> None:
        self.live = [WorkerProcess() for _ in range(PROCESSES)]
        self.spare = WorkerProcess()

    def __getitem__(self, index: int) -> WorkerProcess:
        return self.live[index]

    def replace(self, index: int) -> WorkerProcess:
        """Kill process `index`; the spare takes its place and a new spare starts."""
        self.live[index].kill()
        self.live[index], self.spare = self.spare, WorkerProcess()
        return self.live[index]

    def healthy(self, index: int) -> WorkerProcess:
        """The worker, replaced if it died or hung (an earlier failing example)."""
        if self.live[index].process.poll() is not None:
            return self.replace(index)
        return self.live[index]

    def stop(self) -> None:
        for worker in [*self.live, self.spare]:
            worker.stop()


# -- environments ------------------------------------------------------------------------


class ProcessMemoryEnv(MemoryEnv):
    """The in-memory bucket on the model's clock, served to the workers by `server`."""

    def __init__(self, server: BucketServer) -> None:
        super().__init__()
        self.server = server
        server.bucket = self.bucket

    def backend_spec(self) -> tuple[Any, ...]:
        return ("memory", self.server.address, self.server.authkey)


class ProcessS3Env(S3Env):
    """A real S3 server (SeaweedFS): the workers connect to it themselves."""

    def __init__(self, server: SeaweedServer) -> None:
        super().__init__(server)
        self.raw = open_backend(self.settings(0, "through"))
        self.raw.create_bucket()

    def backend_spec(self) -> tuple[Any, ...]:
        return ("s3",)

    def close(self) -> None:
        self.raw.close()
        super().close()


def open_command(env: Env, node: int, mode: str) -> tuple[Any, ...]:
    """The worker command that opens a store of `node` in `mode` on `env`."""
    spec = env.backend_spec()  # type: ignore[attr-defined]
    return ("open", settings_json(env.settings(node, mode)), spec, LOCK_TIMEOUT)


def cache_database(env: Env, node: int) -> Path:
    """The node cache's SQLite database (every process of the node shares it)."""
    return env.settings(node, "through").cache_dir / "cache" / "cache.db"


@contextlib.contextmanager
def cache_lock_held(database: Path, longest: float = HOLD_LIMIT) -> Iterator[None]:
    """Another process of the node holds the cache database's write lock (BEGIN
    IMMEDIATE) until the block ends, or for `longest` seconds at most: a holder that never
    lets go would only deadlock a store that waits for it (a slow disk lets go too)."""
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        holder = sqlite3.connect(database, timeout=30, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            taken.set()
            done.wait(longest)
        finally:
            holder.close()

    thread = threading.Thread(target=hold, name="cache-lock-holder", daemon=True)
    thread.start()
    try:
        assert taken.wait(60), "the cache's lock could not be taken"
        yield
    finally:
        done.set()
        thread.join()


# -- the model's processes -----------------------------------------------------------------


def process_model(modes: tuple[str, ...], strict: bool) -> Model:
    """The model with one `Node` per process; the processes of a node share its cache."""
    model = Model(modes, strict=strict)  # type: ignore[arg-type]
    for process in range(1, len(modes), 2):
        model.nodes[process].cache = model.nodes[process - 1].cache
    return model


def restart(model: Model, process: int) -> Node:
    """Process `process` was killed; its replacement adopts its journal: its pending work
    stays pending (in a fresh process, with the node's cache and nothing registered)."""
    old = model.nodes[process]
    model.crash(old)
    new = Node(old.mode, pending=dict(old.pending), cache=old.cache)
    model.nodes[process] = new
    return new


def siblings(process: int) -> list[int]:
    """The processes of the node `process` runs on."""
    first = process - process % 2
    return [first, first + 1]


def take_interrupted(
    model: Model,
    node: Node,
    call: tuple[str, str, bytes],
    now: bytes | None,
    pending: tuple[str, bytes | None] | None,
) -> None:
    """An interrupted call (name, key, value) of `node`: the model takes the outcome that
    the bucket (`now`, the key's object) and the process's journal (`pending`) show."""
    name, key, value = call
    if name in ("save", "delete") and node.mode == "through":
        done = now == value if name == "save" else now is None
        if done and name == "save":
            model._write(key, value)
        elif done:
            model.bucket.pop(key, None)
        node.cache.pop(key, None)  # a failed write drops the key's entry
    elif name == "save" and pending == ("put", value):
        model.save(node, key, value)
    elif name == "delete" and pending == ("delete", None):
        model.delete(node, key)
