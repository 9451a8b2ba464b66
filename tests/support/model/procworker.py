"""A worker process of the multi-process model test: one store at a time, driven by
commands on a connection (a socketpair the test passed as a file descriptor).

python -m tests.support.model.procworker FD

Commands (tuples, answered with a dict): ("open", settings_json, backend, lock_timeout)
with backend ("memory", address, authkey) or ("s3",); ("op", name, args) for save, delete,
read, contains, keys, flush, clear; ("arm", index, stage): the next op's index-th request
raises KeyboardInterrupt before it is sent or after it was answered; ("full",): the next
op's cache database writes fail as on a full disk; ("fork", variant): fork a child (the
"fork" start method) while the store is open; the child exits at once ("exit"), or calls
flush() or close() on the inherited store first, and tells what happened; ("pending",):
this store's journal; ("close",); ("exit",). Every answer carries the errors the store
reported since the last one. The store's backend is wrapped so interrupts can be armed.
"""

from __future__ import annotations

import faulthandler
import json
import multiprocessing
import os
import signal
import socket
import sqlite3
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

import diskcache

from objectstore_s3 import KeyNotFoundError, ObjectStore, ObjectStoreError, ObjectStoreSettings
from objectstore_s3.local import cache as cache_module
from tests.support.model.shared_backend import Interrupter, InterruptingBackend, SharedBackend

_DISK_FULL = {"on": False}
_LOCK_TIMEOUT = {"seconds": 5.0}


def _patch_cache() -> None:
    """The cache's database writes fail while `_DISK_FULL` is on; its lock timeout is
    `_LOCK_TIMEOUT` (short, so that a held lock costs an example little time)."""

    def failing(name: str) -> Any:
        original = getattr(diskcache.Cache, name)

        def write(self: diskcache.Cache, *args: Any, **kwargs: Any) -> Any:
            if _DISK_FULL["on"]:
                raise sqlite3.OperationalError("database or disk is full")
            return original(self, *args, **kwargs)

        return write

    for name in ("set", "add", "delete"):
        setattr(diskcache.Cache, name, failing(name))
    original_init = diskcache.Cache.__init__

    def init(self: diskcache.Cache, *args: Any, **kwargs: Any) -> None:
        kwargs["timeout"] = _LOCK_TIMEOUT["seconds"]
        original_init(self, *args, **kwargs)

    diskcache.Cache.__init__ = init
    node_cache_init = cache_module.NodeCache.__init__
    if "lock_timeout" in node_cache_init.__code__.co_varnames:

        def node_cache(self: Any, *args: Any, **kwargs: Any) -> None:
            kwargs["lock_timeout"] = _LOCK_TIMEOUT["seconds"]
            node_cache_init(self, *args, **kwargs)

        cache_module.NodeCache.__init__ = node_cache  # type: ignore[method-assign]


class Worker:
    def __init__(self) -> None:
        self.store: ObjectStore | None = None
        self.interrupter = Interrupter()
        self.errors: list[ObjectStoreError] = []
        self.seen = 0
        self.backend: Any = None

    def answer(self, **fields: Any) -> dict[str, Any]:
        new = self.errors[self.seen :]
        self.seen = len(self.errors)
        return {**fields, "reports": [(type(error).__name__, str(error)) for error in new]}

    def open(self, settings: str, backend: tuple[Any, ...], lock_timeout: float) -> None:
        _LOCK_TIMEOUT["seconds"] = lock_timeout
        values = ObjectStoreSettings(**json.loads(settings))
        if backend[0] == "memory":
            inner: Any = SharedBackend(backend[1], backend[2])
        else:
            from objectstore_s3.node.connect import open_backend

            inner = open_backend(values)
        self.backend = inner
        self.errors, self.seen = [], 0
        wrapped = InterruptingBackend(inner, self.interrupter)
        self.store = ObjectStore(values, on_error=self.errors.append, backend=wrapped)
        self.store._node.wait_for_replay()

    def op(self, name: str, args: list[Any]) -> dict[str, Any]:
        store = self.store
        assert store is not None
        calls = {
            "save": lambda: store.save(args[0], args[1]),
            "delete": lambda: store.delete(args[0]),
            "read": lambda: store.read_bytes(args[0]),
            "contains": lambda: store.contains_key(args[0]),
            "keys": lambda: store.keys,
            "flush": store.flush,
            "clear": store.clear,
        }
        try:
            result: dict[str, Any] = {"value": calls[name]()}
        except KeyNotFoundError:
            result = {"error": "KeyNotFoundError"}
        except KeyboardInterrupt:
            result = {"interrupted": True}
        except ObjectStoreError as exc:
            result = {"error": type(exc).__name__, "message": str(exc)}
        try:
            # Fills behind reads land (or fail, on a full disk) before the next step.
            store._node.local.cache.settle()
        finally:
            self.interrupter.disarm()
            _DISK_FULL["on"] = False
        result["fired"] = self.interrupter.fired
        self.interrupter.fired = None
        return self.answer(**result)

    def pending(self) -> dict[str, tuple[str, bytes | None]]:
        assert self.store is not None
        journal = self.store._node.local.journal
        return {
            entry.key: (entry.op, journal.data(entry) if entry.op == "put" else None)
            for entry in journal.entries()
        }

    def fork(self, variant: str) -> str:
        context = multiprocessing.get_context("fork")
        receiving, sending = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(self.store, variant, sending))
        child.start()
        sending.close()
        child.join(60)
        if child.exitcode is None:
            child.kill()
            child.join()
            return "hung"
        outcome = receiving.recv() if receiving.poll() else f"no answer, exit {child.exitcode}"
        receiving.close()
        return str(outcome)

    def close(self) -> None:
        if self.store is not None:
            store, self.store = self.store, None
            store.close()

    def handle(self, command: tuple[Any, ...]) -> dict[str, Any]:
        kind = command[0]
        if kind == "open":
            self.open(*command[1:])
            return self.answer()
        if kind == "op":
            return self.op(command[1], command[2])
        if kind == "arm":
            self.interrupter.arm(command[1], command[2])
            return self.answer()
        if kind == "full":
            _DISK_FULL["on"] = True
            return self.answer()
        if kind == "fork":
            return self.answer(value=self.fork(command[1]))
        if kind == "pending":
            return self.answer(value=self.pending())
        if kind == "close":
            self.close()
            return self.answer()
        raise ValueError(f"unknown command {command!r}")


def _child(store: ObjectStore | None, variant: str, sending: Connection) -> None:
    """A forked child: it exits (running the exit hooks it inherited), after trying the
    inherited store if asked: a clear ObjectStoreError, or the work of a fresh store."""
    outcome = "exited"
    if store is not None and variant in ("flush", "close"):
        try:
            getattr(store, variant)()
            outcome = "worked"
        except ObjectStoreError:
            outcome = "refused"
        except BaseException as exc:  # reported to the test, which fails on it
            outcome = f"{type(exc).__name__}: {exc}"
    sending.send(outcome)
    sending.close()


def main() -> int:
    faulthandler.register(signal.SIGUSR1)  # the test asks for the stacks of a hung worker
    _patch_cache()
    sock = socket.socket(fileno=int(sys.argv[1]))
    connection = Connection(sock.detach())
    worker = Worker()
    connection.send({"ready": os.getpid()})
    while True:
        try:
            command = connection.recv()
        except EOFError:
            return 0
        if command[0] == "exit":
            worker.close()
            return 0
        try:
            reply = worker.handle(command)
        except BaseException:
            reply = {"failure": traceback.format_exc(limit=-6)}
        connection.send(reply)


if __name__ == "__main__":
    sys.exit(main())
