"""The journal's files: segments of CRC-framed records, written whole or not at all.

A record is a fixed header (magic, kind, lengths, CRC-32 of the rest), a small JSON
header and the data. `append` continues short writes and, when a write fails (a full
disk), cuts the partial record back off the file before raising. `parse` reads a dead
process's segment back: a record cut short at the end (a kill mid-write) is ignored, a
damaged one is skipped and counted, and the scan resumes at the next intact record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from filelock import FileLock

from objectstore_s3.errors import LocalStorageError
from objectstore_s3.transport.base import Base

__all__ = ["MAX_RECORD_BYTES", "PendingEntry", "Segment", "encode", "parse"]

log = logging.getLogger("objectstore_s3")

Operation = Literal["put", "delete"]
MAX_RECORD_BYTES = 5 * 1024**3  # S3's limit for one PUT: a bigger value goes through a file
RECORD = struct.Struct(">4sBIQI")  # magic, kind, header length, data length, crc32
_MAGIC = b"OSJ2"
_KINDS: dict[int, str] = {0: "put", 1: "delete", 2: "done", 3: "rebase"}
_CODES = {name: code for code, name in _KINDS.items()}


def encode(kind: str, header: dict[str, object], data: bytes = b"") -> list[bytes]:
    """The parts of one record (written with `Segment.append`, without joining them)."""
    raw = json.dumps(header).encode()
    prefix = RECORD.pack(
        _MAGIC, _CODES[kind], len(raw), len(data), zlib.crc32(data, zlib.crc32(raw))
    )
    return [prefix, raw, data] if data else [prefix, raw]


@dataclass
class Segment:
    path: Path
    fd: int
    lock: FileLock
    size: int = 0
    pending: int = 0
    closed: bool = False

    def append(self, parts: Sequence[bytes], fsync: bool) -> int:
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
    segment: Segment = field(repr=False, compare=False)
    offset: int = field(repr=False, default=0)
    lease: str | None = None  # the quota lease that holds room for it


def parse(segment: Segment) -> tuple[list[PendingEntry], int]:
    """The pending entries of a segment, and how many damaged records were skipped."""
    latest: dict[str, PendingEntry] = {}
    done: set[str] = set()
    rebased: dict[str, Base] = {}
    damaged = 0
    if segment.size == 0:
        return [], 0
    with mmap.mmap(segment.fd, segment.size, prot=mmap.PROT_READ) as view:
        offset = 0
        while offset + RECORD.size <= segment.size:
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
                    str(meta["lease"]) if meta.get("lease") else None,
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
    magic, kind, header_length, data_length, crc = RECORD.unpack_from(view, offset)
    start = offset + RECORD.size + header_length
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
    header = view[offset + RECORD.size : start]
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
