"""The write-behind journal: accepted saves and deletes, on local disk until uploaded.

Each store appends to a segment file of its own (`seg-<pid>-<id>.log`), holding an
exclusive lock on it for its lifetime: one `write()` per save, no file created per save.
Every record carries a CRC, so a record torn by a kill mid-write is recognized and
ignored (its save had not returned). An in-memory index maps each key to its latest
record: repeated saves of a key coalesce, and reads see pending work without touching
the disk. After an upload, a small "done" record is appended, so a restart does not
replay what the bucket already has; a segment with nothing pending is deleted.

A segment whose lock is free belongs to a dead process: the next store opened on the node
with the same settings adopts it and replays its pending records. Two stores (in one
process or several) never write the same segment, so they cannot corrupt each other.
With `fsync`, every record is also fsynced, which survives a power loss.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from filelock import FileLock, Timeout

from .cache import private_directory

__all__ = ["Journal", "PendingEntry"]

Operation = Literal["put", "delete"]
_RECORD = struct.Struct(">4sBIQI")  # magic, kind, header length, data length, crc32
_MAGIC = b"OSJ1"
_KINDS: dict[int, str] = {0: "put", 1: "delete", 2: "done"}
_KIND_CODES = {name: code for code, name in _KINDS.items()}


@dataclass
class _Segment:
    path: str
    fd: int
    lock: FileLock
    size: int = 0
    pending: int = 0
    active: bool = True  # still appended to by this store
    closed: bool = False

    def append(self, record: bytes, fsync: bool) -> int:
        offset = self.size
        os.write(self.fd, record)
        self.size += len(record)
        if fsync:
            os.fsync(self.fd)
        return offset

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def remove(self) -> None:
        self.closed = True
        os.close(self.fd)
        for path in (self.path, self.path + ".lock"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self.lock.release()


@dataclass(frozen=True)
class PendingEntry:
    """The latest accepted operation on a key that the bucket does not have yet."""

    key: str
    op: Operation
    token: str
    accepted_at: float
    segment: _Segment = field(repr=False, compare=False)
    offset: int = field(repr=False)
    length: int = field(repr=False)


class Journal:
    """One store's pending operations (plus any adopted from dead processes)."""

    def __init__(self, directory: Path, *, fsync: bool = False) -> None:
        self.directory = directory
        self.fsync = fsync
        self._lock = threading.Lock()
        self._index: dict[str, PendingEntry] = {}
        self._active: _Segment | None = None

    # -- writing ---------------------------------------------------------------------------

    def record(self, key: str, op: Operation, data: bytes = b"") -> None:
        """Durably record a put or delete of `key`; it replaces any pending one."""
        token = uuid.uuid4().hex
        accepted_at = time.time()
        header = json.dumps({"key": key, "token": token, "accepted_at": accepted_at}).encode()
        record = _encode(op, header, data)
        with self._lock:
            segment = self._active or self._open_segment()
            offset = segment.append(record, self.fsync)
            entry = PendingEntry(
                key,
                op,
                token,
                accepted_at,
                segment,
                offset + _RECORD.size + len(header),
                len(data),
            )
            self._replace(entry)

    def complete(self, entry: PendingEntry) -> bool:
        """Mark `entry` uploaded, unless a newer save of its key replaced it meanwhile."""
        with self._lock:
            if self._index.get(entry.key) is not entry:
                return False
            del self._index[entry.key]
            header = json.dumps({"token": entry.token}).encode()
            entry.segment.append(_encode("done", header, b""), self.fsync)
            self._release(entry.segment)
            return True

    def close(self) -> None:
        """Let go of this store's segments; pending ones stay on disk for a later replay."""
        with self._lock:
            segments = {id(entry.segment): entry.segment for entry in self._index.values()}
            if self._active is not None:
                segments[id(self._active)] = self._active
            for segment in segments.values():
                if segment.pending == 0:
                    segment.remove()
                else:
                    segment.closed = True
                    os.close(segment.fd)
                    segment.lock.release()
            self._index.clear()
            self._active = None

    # -- reading ---------------------------------------------------------------------------

    def get(self, key: str) -> PendingEntry | None:
        """The pending operation on `key`, if any (read-your-writes, no disk access)."""
        return self._index.get(key)

    def data(self, entry: PendingEntry) -> bytes | None:
        """The entry's bytes; None if it was uploaded and its segment removed meanwhile."""
        with self._lock:
            if entry.segment.closed:
                return None
            return entry.segment.read(entry.offset, entry.length)

    def entries(self) -> list[PendingEntry]:
        """Every pending entry, oldest first."""
        with self._lock:
            return sorted(self._index.values(), key=lambda entry: entry.accepted_at)

    def pending_keys(self) -> dict[str, Operation]:
        with self._lock:
            return {key: entry.op for key, entry in self._index.items()}

    def __bool__(self) -> bool:
        return bool(self._index)

    # -- adoption of dead processes' segments ----------------------------------------------

    def adopt_orphans(self) -> int:
        """Take over the segments of dead processes; returns how many entries they hold."""
        if not self.directory.is_dir():
            return 0
        adopted = 0
        for path in sorted(self.directory.glob("seg-*.log")):
            lock = FileLock(str(path) + ".lock")
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue  # its owner is alive
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND)
            except FileNotFoundError:
                lock.release()
                continue
            segment = _Segment(str(path), fd, lock, size=os.fstat(fd).st_size, active=False)
            with self._lock:
                for entry in _parse(segment):
                    current = self._index.get(entry.key)
                    if current is None or current.accepted_at <= entry.accepted_at:
                        self._replace(entry)
                        adopted += 1
                if segment.pending == 0:
                    segment.remove()
        return adopted

    # -- internals ---------------------------------------------------------------------------

    def _open_segment(self) -> _Segment:
        private_directory(self.directory)
        path = str(self.directory / f"seg-{os.getpid()}-{uuid.uuid4().hex[:12]}.log")
        lock = FileLock(path + ".lock")
        lock.acquire(timeout=0)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        self._active = _Segment(path, fd, lock)
        return self._active

    def _replace(self, entry: PendingEntry) -> None:
        previous = self._index.get(entry.key)
        self._index[entry.key] = entry
        entry.segment.pending += 1
        if previous is not None:
            self._release(previous.segment)

    def _release(self, segment: _Segment) -> None:
        segment.pending -= 1
        if segment.pending == 0:
            segment.remove()  # nothing left to replay from it
            if segment is self._active:
                self._active = None


def _encode(kind: str, header: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(header))
    return _RECORD.pack(_MAGIC, _KIND_CODES[kind], len(header), len(data), crc) + header + data


def _parse(segment: _Segment) -> list[PendingEntry]:
    """The pending entries of a segment, stopping at a torn or damaged record."""
    latest: dict[str, PendingEntry] = {}
    done: set[str] = set()
    offset = 0
    while offset + _RECORD.size <= segment.size:
        magic, kind, header_length, data_length, crc = _RECORD.unpack(
            segment.read(offset, _RECORD.size)
        )
        start = offset + _RECORD.size
        end = start + header_length + data_length
        if magic != _MAGIC or kind not in _KINDS or end > segment.size:
            break
        header = segment.read(start, header_length)
        data = segment.read(start + header_length, data_length)
        if zlib.crc32(data, zlib.crc32(header)) != crc:
            break
        try:
            meta = json.loads(header)
        except ValueError:
            break
        if _KINDS[kind] == "done":
            done.add(meta["token"])
        else:
            op: Operation = "put" if kind == 0 else "delete"
            latest[meta["key"]] = PendingEntry(
                meta["key"],
                op,
                meta["token"],
                float(meta["accepted_at"]),
                segment,
                start + header_length,
                data_length,
            )
        offset = end
    return [entry for entry in latest.values() if entry.token not in done]
