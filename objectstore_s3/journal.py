"""The write-behind journal: accepted saves and deletes, on local disk until uploaded.

One file per pending key (named by a hash of the key), so repeated saves of a key
coalesce by replacing the file. Each file is written to a temporary name, fsynced and
renamed, so a process killed at any point leaves either the old entry or the new one.
An entry carries a random token; the flusher removes it after uploading only if the
token is unchanged, under a file lock, so a save that lands while its predecessor is
being uploaded is never lost. Any store opened on the node with the same settings
(same journal folder) sees and replays the entries.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from filelock import FileLock

__all__ = ["Journal", "PendingEntry"]

Operation = Literal["put", "delete"]
_SUFFIX = ".entry"
_STALE_TEMPORARY_SECONDS = 3600


@dataclass(frozen=True)
class PendingEntry:
    key: str
    op: Operation
    token: str
    data: bytes
    accepted_at: float


class Journal:
    """Pending operations of one (endpoint, bucket, prefix, organization) on this node."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._file_lock = FileLock(str(directory) + ".lock", timeout=60)

    def _ensure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, key: str) -> Path:
        name = hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()
        return self.directory / (name + _SUFFIX)

    def record(self, key: str, op: Operation, data: bytes = b"") -> None:
        """Durably record a put or delete of `key`, replacing any pending one."""
        header = json.dumps(
            {"key": key, "op": op, "token": uuid.uuid4().hex, "accepted_at": time.time()}
        ).encode("utf-8")
        with self._lock:
            self._ensure()
            path = self._path(key)
            temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            with temporary.open("wb") as handle:
                handle.write(header + b"\n" + data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
            _fsync_directory(self.directory)

    def get(self, key: str) -> PendingEntry | None:
        """The pending operation on `key`, if any (read-your-writes on this node)."""
        return _read_entry(self._path(key))

    def entries(self) -> Iterator[PendingEntry]:
        """Every pending entry, oldest first."""
        if not self.directory.is_dir():
            return
        paths = []
        for path in self.directory.iterdir():
            if path.suffix == _SUFFIX:
                paths.append(path)
            elif path.name.endswith(".tmp"):
                _remove_if_stale(path)  # left by a process killed mid-write
        found = [entry for path in paths if (entry := _read_entry(path)) is not None]
        yield from sorted(found, key=lambda entry: entry.accepted_at)

    def pending_keys(self) -> dict[str, Operation]:
        return {entry.key: entry.op for entry in self.entries()}

    def __bool__(self) -> bool:
        return self.directory.is_dir() and any(
            path.suffix == _SUFFIX for path in self.directory.iterdir()
        )

    def complete(self, entry: PendingEntry) -> bool:
        """Drop `entry` now that the bucket has it, unless a newer save replaced it."""
        with self._lock, self._file_lock:
            path = self._path(entry.key)
            current = _read_entry(path)
            if current is None or current.token != entry.token:
                return False
            path.unlink(missing_ok=True)
            return True

    def flush_lock(self) -> FileLock:
        """Held while uploading, so two processes on the node do not upload one entry twice."""
        return FileLock(str(self.directory) + ".flush.lock", timeout=-1)


def _read_entry(path: Path) -> PendingEntry | None:
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    header, separator, data = raw.partition(b"\n")
    if not separator:
        return None
    try:
        meta = json.loads(header)
        return PendingEntry(
            meta["key"], meta["op"], meta["token"], data, float(meta["accepted_at"])
        )
    except (ValueError, KeyError, TypeError):
        return None


def _remove_if_stale(path: Path) -> None:
    try:
        if time.time() - path.stat().st_mtime > _STALE_TEMPORARY_SECONDS:
            path.unlink()
    except OSError:
        pass


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
