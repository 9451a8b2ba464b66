"""The write-behind journal: accepted saves and deletes, on local disk until uploaded.

Each store appends to a segment file of its own (`seg-<pid>-<id>.log`), holding an
exclusive lock on it for its lifetime. A record is written whole or not at all: short
writes are continued, and a failed write (a full disk) is cut back off the file before
the save reports the error. Every record carries a CRC; a damaged one is skipped and
reported, and the scan resumes at the next intact record. An in-memory index maps each
key to its latest record, so repeated saves coalesce and reads see pending work without
the disk. Each entry remembers the object it expects to replace (its *base*), which is
what keeps a late upload or a replay from overwriting a newer object (see writer.py).

After an upload a small "done" record goes into the entry's own segment, and a segment
with nothing pending is deleted. A segment whose lock is free belongs to a dead process:
the next store on the node adopts it, after checking that the user owns it and nobody
else could have written it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import struct
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from filelock import FileLock, Timeout

from .errors import LocalStorageError
from .fs import check_private, private_directory

__all__ = ["MAX_RECORD_BYTES", "Base", "Journal", "PendingEntry"]

log = logging.getLogger("objectstore_s3")

Operation = Literal["put", "delete"]
MAX_RECORD_BYTES = 5 * 1024**3  # S3's limit for one PUT: a bigger value goes through a file
_ROTATE_BYTES = 64 * 1024 * 1024
_RECORD = struct.Struct(">4sBIQI")  # magic, kind, header length, data length, crc32
_MAGIC = b"OSJ2"
_KINDS: dict[int, str] = {0: "put", 1: "delete", 2: "done", 3: "rebase"}
_CODES = {name: code for code, name in _KINDS.items()}


@dataclass(frozen=True)
class Base:
    """What a write expects to replace: a known object (etag, size), known absence
    (etag None, known), or nothing known."""

    etag: str | None = None
    size: int = 0
    known: bool = False

    @staticmethod
    def absent() -> Base:
        return Base(None, 0, True)


@dataclass
class _Segment:
    path: Path
    fd: int
    lock: FileLock
    size: int = 0
    pending: int = 0
    closed: bool = False

    def append(self, parts: list[bytes | memoryview], fsync: bool) -> int:
        """Write the parts whole at the end of the file, or cut them off and raise."""
        offset = self.size
        try:
            for part in parts:
                view = memoryview(part)
                while view:  # one write() moves at most ~2 GiB, and may move less
                    view = view[os.write(self.fd, view) :]
            if fsync:
                os.fsync(self.fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, offset)
            raise LocalStorageError(
                f"Could not write to the journal {self.path} ({exc.strerror}); nothing was "
                "saved. Free disk space in cache_dir, or use write-through mode "
                "(persistence_interval_seconds=0)."
            ) from exc
        self.size = offset + sum(len(part) for part in parts)
        return offset

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def release(self, remove: bool) -> None:
        self.closed = True
        os.close(self.fd)
        if remove:
            for path in (self.path, Path(str(self.path) + ".lock")):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        self.lock.release()


@dataclass(frozen=True)
class PendingEntry:
    """The latest accepted operation on a key that the bucket does not have yet."""

    key: str
    op: Operation
    token: str
    accepted_at: float  # local wall clock
    accepted_server: tuple[float, float] | None  # server-clock bounds, when known
    base: Base
    length: int
    segment: _Segment = field(repr=False, compare=False)
    offset: int = field(repr=False, default=0)


class Journal:
    """One store's pending operations (plus any adopted from dead processes)."""

    def __init__(self, directory: Path, *, fsync: bool = False) -> None:
        self.directory = directory
        self.fsync = fsync
        self._lock = threading.Lock()
        self._index: dict[str, PendingEntry] = {}
        self._active: _Segment | None = None
        self._segments: list[_Segment] = []

    # -- writing ---------------------------------------------------------------------------

    def record(
        self,
        key: str,
        op: Operation,
        data: bytes = b"",
        *,
        base: Base,
        accepted_server: tuple[float, float] | None = None,
        token: str | None = None,
    ) -> tuple[PendingEntry, PendingEntry | None]:
        """Durably record a put or delete of `key`; returns it and the entry it replaced."""
        if len(data) > MAX_RECORD_BYTES:
            raise LocalStorageError(
                f"The value for '{key}' is {len(data)} bytes, over the {MAX_RECORD_BYTES} "
                "bytes one save can hold; write it to get_file_path(key) and call save(key)."
            )
        token = token or uuid.uuid4().hex
        accepted_at = time.time()
        header = json.dumps(
            {
                "key": key,
                "token": token,
                "accepted_at": accepted_at,
                "accepted_server": accepted_server,
                "base": [base.etag, base.size, base.known],
            }
        ).encode()
        prefix = _RECORD.pack(
            _MAGIC, _CODES[op], len(header), len(data), zlib.crc32(data, zlib.crc32(header))
        )
        with self._lock:
            segment = self._writable()
            offset = segment.append([prefix, header, data], self.fsync)
            entry = PendingEntry(
                key,
                op,
                token,
                accepted_at,
                accepted_server,
                base,
                len(data),
                segment,
                offset + _RECORD.size + len(header),
            )
            previous = self._index.get(key)
            self._index[key] = entry
            segment.pending += 1
            if previous is not None:
                self._retire(previous, "superseded", None)
            return entry, previous

    def complete(self, entry: PendingEntry, outcome: str, etag: str | None) -> bool:
        """Mark `entry` done (uploaded, or dropped); False if a newer save replaced it,
        in which case the newer one now expects the object this upload left."""
        with self._lock:
            current = self._index.get(entry.key)
            if current is not entry:
                if current is not None and outcome == "uploaded":
                    # The newer save now replaces what this upload left, not the old base;
                    # recorded, so that a replay does not take our own upload for a rival's.
                    base = Base(etag, entry.length, True) if entry.op == "put" else Base.absent()
                    self._note(current.segment, "rebase", current.token, base=base)
                    self._index[entry.key] = replace(current, base=base)
                return False
            del self._index[entry.key]
            self._retire(entry, outcome, etag)
            return True

    def _note(self, segment: _Segment, kind: str, token: str, **fields: object) -> None:
        """Append a small record about `token` to its segment (best effort: a replay
        re-checks every entry against the bucket anyway)."""
        if segment.closed:
            return
        values: dict[str, object] = {"token": token, **fields}
        if isinstance(values.get("base"), Base):
            base = values["base"]
            assert isinstance(base, Base)
            values["base"] = [base.etag, base.size, base.known]
        header = json.dumps(values).encode()
        prefix = _RECORD.pack(_MAGIC, _CODES[kind], len(header), 0, zlib.crc32(header))
        with contextlib.suppress(LocalStorageError):
            segment.append([prefix, header], self.fsync)

    def _retire(self, entry: PendingEntry, outcome: str, etag: str | None) -> None:
        segment = entry.segment
        self._note(segment, "done", entry.token, outcome=outcome, etag=etag)
        segment.pending -= 1
        if segment.pending == 0 and segment is not self._active:
            self._drop_segment(segment)

    def close(self) -> None:
        """Let go of this store's segments; pending ones stay on disk for a later replay."""
        with self._lock:
            for segment in self._segments:
                if not segment.closed:
                    segment.release(remove=segment.pending == 0)
            self._segments.clear()
            self._index.clear()
            self._active = None

    # -- reading ---------------------------------------------------------------------------

    def get(self, key: str) -> PendingEntry | None:
        """The pending operation on `key`, if any (read-your-writes, no disk access)."""
        return self._index.get(key)

    def data(self, entry: PendingEntry) -> bytes | None:
        """The entry's bytes; None if its segment was released meanwhile."""
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

    def adopt_orphans(self) -> tuple[int, int]:
        """Take over the segments of dead processes: (entries adopted, damaged records)."""
        if not self.directory.is_dir():
            return 0, 0
        check_private(self.directory, "journal folder")
        adopted = damaged = 0
        for path in sorted(self.directory.glob("seg-*.log")):
            lock = FileLock(str(path) + ".lock")
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue  # its owner is alive
            try:
                check_private(path, "journal segment")
                fd = os.open(path, os.O_RDWR | os.O_APPEND)
            except FileNotFoundError:
                lock.release()
                continue
            except BaseException:
                lock.release()
                raise
            segment = _Segment(path, fd, lock, size=os.fstat(fd).st_size)
            entries, bad = _parse(segment)
            damaged += bad
            with self._lock:
                self._segments.append(segment)
                for entry in entries:
                    current = self._index.get(entry.key)
                    if current is None or current.accepted_at <= entry.accepted_at:
                        self._index[entry.key] = entry
                        segment.pending += 1
                        if current is not None:
                            self._retire(current, "superseded", None)
                        adopted += 1
                    else:
                        segment.pending += 1
                        self._retire(entry, "superseded", None)
                if segment.pending == 0:
                    self._drop_segment(segment)
        return adopted, damaged

    # -- internals ---------------------------------------------------------------------------

    def _writable(self) -> _Segment:
        active = self._active
        if active is not None and active.size < _ROTATE_BYTES:
            return active
        if active is not None and active.pending == 0:
            self._drop_segment(active)
        private_directory(self.directory)
        path = self.directory / f"seg-{os.getpid()}-{uuid.uuid4().hex[:12]}.log"
        lock = FileLock(str(path) + ".lock")
        lock.acquire(timeout=0)
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            lock.release()
            raise LocalStorageError(
                f"Cannot create a journal segment in {self.directory}: {exc.strerror}"
            ) from exc
        self._active = _Segment(path, fd, lock)
        self._segments.append(self._active)
        return self._active

    def _drop_segment(self, segment: _Segment) -> None:
        if not segment.closed:
            segment.release(remove=True)
        if segment in self._segments:
            self._segments.remove(segment)
        if segment is self._active:
            self._active = None


def _parse(segment: _Segment) -> tuple[list[PendingEntry], int]:
    """The pending entries of a segment, and how many damaged records were skipped."""
    latest: dict[str, PendingEntry] = {}
    done: set[str] = set()
    rebased: dict[str, Base] = {}
    damaged = 0
    if segment.size == 0:
        return [], 0
    with mmap.mmap(segment.fd, segment.size, prot=mmap.PROT_READ) as view:
        offset = 0
        while offset + _RECORD.size <= segment.size:
            parsed = _record_at(view, offset, segment.size)
            if parsed == "torn":
                break  # the last record, cut short by a kill: its save never returned
            if parsed is None:
                # Damaged: skip it and resume at the next intact record.
                damaged += 1
                offset = _next_record(view, offset + 1, segment.size)
                continue
            assert not isinstance(parsed, str)
            kind, meta, start, end = parsed
            offset = end
            if kind == "done":
                done.add(str(meta["token"]))
            elif kind == "rebase":
                rebased[str(meta["token"])] = _base(meta.get("base"))
            else:
                server = meta.get("accepted_server")
                latest[str(meta["key"])] = PendingEntry(
                    str(meta["key"]),
                    "put" if kind == "put" else "delete",
                    str(meta["token"]),
                    float(meta["accepted_at"]),  # type: ignore[arg-type]
                    (float(server[0]), float(server[1])) if isinstance(server, list) else None,
                    _base(meta.get("base")),
                    end - start,
                    segment,
                    start,
                )
    if damaged:
        log.error(
            "Skipped %d damaged record(s) in the journal segment %s; the intact records "
            "around them are kept",
            damaged,
            segment.path,
        )
    return [
        replace(entry, base=rebased.get(entry.token, entry.base))
        for entry in latest.values()
        if entry.token not in done
    ], damaged


def _record_at(
    view: mmap.mmap, offset: int, size: int
) -> tuple[str, dict[str, object], int, int] | str | None:
    """(kind, header, data start, end) of an intact record at `offset`; "torn" for a
    record cut short at the end of the file; None for a damaged one."""
    magic, kind, header_length, data_length, crc = _RECORD.unpack_from(view, offset)
    start = offset + _RECORD.size + header_length
    end = start + data_length
    if (
        magic == _MAGIC
        and kind in _KINDS
        and end > size
        and _next_record(view, offset + 1, size) == size
    ):
        return "torn"
    if magic != _MAGIC or kind not in _KINDS or end > size:
        return None
    header = view[offset + _RECORD.size : start]
    with memoryview(view) as whole, whole[start:end] as data:
        intact = zlib.crc32(data, zlib.crc32(header)) == crc
    if not intact:
        return None
    try:
        meta = json.loads(header)
    except ValueError:
        return None
    if not isinstance(meta, dict) or "token" not in meta:
        return None
    return _KINDS[kind], meta, start, end


def _base(raw: object) -> Base:
    if not isinstance(raw, list) or len(raw) != 3:
        return Base()
    etag, size, known = raw
    return Base(etag if isinstance(etag, str) else None, int(size), bool(known))


def _next_record(view: mmap.mmap, start: int, size: int) -> int:
    found = view.find(_MAGIC, start)
    return size if found < 0 else found
