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

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from objectstore_s3.errors import LocalStorageError
from objectstore_s3.fs import open_private, private_directory

from .books import Books, BooksDamagedError

__all__ = ["NodeShelf"]

log = logging.getLogger("objectstore_s3")


class NodeShelf:
    """The books of one node's lease, in the file `path` (its folder is made owner-only)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid = os.getpid()
        self._seen = b""  # the file's content as last read or written by this process
        self._books: Books | None = None
        self._held: dict[str, int] = {}  # this shelf's members: their files' descriptors

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
        """Whether `member`'s process still runs: each member holds an `flock` on a file
        of its own for its life, which the kernel lets go of when the process dies, in
        whatever PID namespace (two containers sharing a cache_dir see different PIDs)."""
        if member in self._held:
            return True
        if not member.isalnum():
            return False  # no member's name (books changed by hand): nobody to wait for
        try:
            fd = open_private(self._member_path(member), "quota member file", os.O_RDWR)
        except FileNotFoundError:
            return False  # (a member joins the books only once its file is locked)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        with contextlib.suppress(OSError):
            self._member_path(member).unlink()  # (dead: nobody else will ever lock it)
        return False

    def member(self) -> str:
        with self._lock:
            name = uuid.uuid4().hex[:16]
            path = self._member_path(name)
            private_directory(path.parent, "quota members folder")
            fd = open_private(path, "quota member file", os.O_RDWR | os.O_CREAT)
            fcntl.flock(fd, fcntl.LOCK_EX)  # a new file: nobody else knows its name
            self._held[name] = fd
            return name

    def gone(self, member: str) -> None:
        """`member` left (or was abandoned): its file is unlocked, so it is seen dead."""
        with self._lock:
            fd = self._held.pop(member, None)
            if fd is not None:
                with contextlib.suppress(OSError):
                    self._member_path(member).unlink()
                os.close(fd)

    def _member_path(self, member: str) -> Path:
        return self._path.with_name(self._path.name + ".members") / member

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
