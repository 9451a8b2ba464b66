"""A node's lease books in a file of its local state, shared by the node's processes.

One small owner-only file per organization namespace (`<cache_dir>/quota/<ns>.books`),
read and rewritten in place under an exclusive `flock` on it: the lock serialises the
node's processes as the thread lock serialises a process's threads, and dies with its
holder (a killed process never leaves the books locked). No fsync and no rename: the books
outlive a process, not the machine. A machine that crashed mid-write leaves books that do
not parse, and the node starts a new lease; the old one is reclaimed as any dead node's
is (with a recount that lists what its changes did: docs/quotas.md, "Nodes").
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from objectstore_s3.errors import LocalStorageError
from objectstore_s3.fs import open_private, pid_alive, private_directory

from .books import Books, BooksDamagedError

__all__ = ["NodeShelf"]

log = logging.getLogger("objectstore_s3")


class NodeShelf:
    """The books of one node's lease, in the file `path` (its folder is made owner-only)."""

    # This process's members that have not left: another shelf on the same books (a second
    # store of the node in this process) tells a member of a store abandoned here (as a
    # killed process would) from a live one, which the PID cannot.
    _live: ClassVar[set[str]] = set()

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid = os.getpid()
        self._seen = b""  # the file's content as last read or written by this process
        self._books: Books | None = None
        self._members = 0

    @contextmanager
    def hold(self) -> Iterator[Books]:
        with self._lock:
            if self._depth:
                assert self._books is not None
                self._depth += 1
                try:
                    yield self._books
                finally:
                    self._depth -= 1
                return
            fd = self._open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth = 1
            try:
                books = self._read(fd)
                try:
                    yield books
                finally:
                    self._write(fd, books)
            finally:
                self._depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)

    @classmethod
    def of_node(cls, cache_dir: Path, *identity: str) -> NodeShelf:
        """The books of a node's lease on one ledger (`identity`: endpoint, bucket, prefix,
        organization, and the limits: a lease is granted under its limits, so stores of
        the node with other limits keep leases of their own), under `cache_dir`."""
        name = hashlib.blake2b("\x00".join(identity).encode(), digest_size=10).hexdigest()
        return cls(cache_dir / "quota" / f"{name}.books")

    def alive(self, member: str) -> bool:
        pid, _, start = member.partition(".")
        if not pid.isdigit() or int(pid) == os.getpid():
            return member in self._live
        # A reused PID is another process: its start time tells them apart.
        recorded, now = start.partition(".")[0], _started(int(pid))
        return pid_alive(int(pid)) and (not recorded or not now or recorded == now)

    def member(self) -> str:
        with self._lock:
            self._members += 1
            name = f"{os.getpid()}.{_started(os.getpid())}.{id(self)}.{self._members}"
            self._live.add(name)
            return name

    def gone(self, member: str) -> None:
        self._live.discard(member)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    def _open(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            # (in a forked child: a descriptor of its own, so that its lock is its own)
            private_directory(self._path.parent, "quota folder")
            self._fd = open_private(self._path, "quota books", os.O_RDWR | os.O_CREAT)
            self._pid, self._seen, self._books = os.getpid(), b"", None
        return self._fd

    def _read(self, fd: int) -> Books:
        try:
            body = os.pread(fd, max(os.fstat(fd).st_size, 1), 0)
        except OSError as exc:
            raise LocalStorageError(f"Cannot read {self._path}: {exc.strerror}") from exc
        if body == self._seen and self._books is not None:
            return self._books  # nobody wrote since: the parsed copy is current
        books = None
        if body:
            try:
                books = Books.parse(body)
            except BooksDamagedError as exc:
                log.warning(
                    "The quota books %s are damaged (%s); this node starts a new lease "
                    "(the old one is reclaimed as a dead node's)",
                    self._path,
                    exc,
                )
        self._books = books if books is not None else Books()
        self._seen = body if books is not None else b""
        return self._books

    def _write(self, fd: int, books: Books) -> None:
        data = books.dump()
        if data == self._seen:
            return
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        except OSError as exc:
            self._seen, self._books = b"", None  # read them again: they may be torn
            raise LocalStorageError(
                f"Cannot write the quota books {self._path}: {exc.strerror}. Free some space "
                "on the cache_dir's disk."
            ) from exc
        self._seen = data


def _started(pid: int) -> str:
    """The process's start time (clock ticks since boot, from /proc), "" if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return ""
