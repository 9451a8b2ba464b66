"""The write-behind journal: accepted saves and deletes, on local disk until uploaded.

Each store appends to a segment file of its own (`seg-<pid>-<id>.log`), holding an
exclusive lock on it for its lifetime. A record is written whole or not at all: short
writes are continued, and a failed write (a full disk) is cut back off the file before
the save reports the error. Every record carries a CRC; a damaged one is skipped and
reported, and the scan resumes at the next intact record. An in-memory index maps each
key to its latest record, so repeated saves coalesce and reads see pending work without
the disk. Each entry remembers the object it expects to replace (its *base*), which is
what keeps a late upload or a replay from overwriting a newer object (see node/writer.py).

After an upload a small "done" record goes into the entry's own segment, and a segment
with nothing pending is deleted. A segment whose lock is free belongs to a dead process:
the next store on the node adopts it, after checking that the user owns it and nobody
else could have written it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

from filelock import FileLock, Timeout

from objectstore_s3.errors import LocalStorageError
from objectstore_s3.fs import check_private, private_directory
from objectstore_s3.transport.base import Base

from .segments import (
    MAX_RECORD_BYTES,
    RECORD,
    Operation,
    PendingEntry,
    Segment,
    encode,
    parse,
)

__all__ = ["Journal", "PendingEntry"]

_ROTATE_BYTES = 64 * 1024 * 1024


class Journal:
    """One store's pending operations (plus any adopted from dead processes)."""

    def __init__(self, directory: Path, *, fsync: bool = False) -> None:
        self.directory = directory
        self.fsync = fsync
        self._lock = threading.Lock()
        self._index: dict[str, PendingEntry] = {}
        self._active: Segment | None = None
        self._segments: list[Segment] = []
        self.adopted_leases: set[str] = set()  # quota leases of dead processes' entries

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
        lease: str | None = None,
    ) -> tuple[PendingEntry, PendingEntry | None]:
        """Durably record a put or delete of `key`; returns it and the entry it replaced."""
        if len(data) > MAX_RECORD_BYTES:
            raise LocalStorageError(
                f"The value for '{key}' is {len(data)} bytes, over the {MAX_RECORD_BYTES} "
                "bytes one save can hold; write it to get_file_path(key) and call save(key)."
            )
        token = token or uuid.uuid4().hex
        accepted_at = time.time()
        parts = encode(
            op,
            {
                "key": key,
                "token": token,
                "accepted_at": accepted_at,
                "accepted_server": accepted_server,
                "base": [base.etag, base.size, base.known],
                "lease": lease,
            },
            data,
        )
        with self._lock:
            segment = self._writable()
            offset = segment.append(parts, self.fsync)
            entry = PendingEntry(
                key,
                op,
                token,
                accepted_at,
                accepted_server,
                base,
                len(data),
                segment,
                offset + RECORD.size + len(parts[1]),
                lease,
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

    def _note(self, segment: Segment, kind: str, token: str, **fields: object) -> None:
        """Append a small record about `token` to its segment (best effort: a replay
        re-checks every entry against the bucket anyway)."""
        if segment.closed:
            return
        base = fields.pop("base", None)
        if isinstance(base, Base):
            fields["base"] = [base.etag, base.size, base.known]
        with contextlib.suppress(LocalStorageError):
            segment.append(encode(kind, {"token": token, **fields}), self.fsync)

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
            segment = Segment(path, fd, lock, size=os.fstat(fd).st_size)
            entries, bad = parse(segment)
            damaged += bad
            self.adopted_leases.update(entry.lease for entry in entries if entry.lease)
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

    def _writable(self) -> Segment:
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
        self._active = Segment(path, fd, lock)
        self._segments.append(self._active)
        return self._active

    def _drop_segment(self, segment: Segment) -> None:
        if not segment.closed:
            segment.release(remove=True)
        if segment in self._segments:
            self._segments.remove(segment)
        if segment is self._active:
            self._active = None
