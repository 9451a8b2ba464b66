"""Local files for `get_file_path`: real files under `local_root/<organization_id>/`.

A key's file is downloaded to a temporary name beside it and renamed into place, so the
path never holds half a file, and its mtime is set to the object's LastModified (as rsync
does). Each file's state at its last sync (size, mtime, inode; the ETag it matches) is
remembered, in memory and in a small node-local record (so another process, or a later
run, knows which version a file holds), and a file is "changed" when that state
differs. A write can only be missed
when it lands within the file system's timestamp granularity of the state we recorded
(git's "racy clean" case); for files synced right after being written, a SHA-256 of the
content is recorded too and compared while the mtime is that recent.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from filelock import FileLock

from .cache import private_directory
from .errors import InvalidKeyError
from .keys import local_relative_path

__all__ = ["FileState", "LocalFiles", "file_digest"]

_RACY_WINDOW_NS = 2_000_000_000  # mtimes this close to the recording time are not trusted
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FileState:
    """A local file as it was when last synced with the bucket."""

    size: int
    mtime_ns: int
    inode: int
    etag: str | None  # the bucket object's ETag it matches; None if not in the bucket yet
    digest: str | None  # only for files whose mtime was too recent to trust
    recorded_ns: int


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in chunks (bounded memory)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class LocalFiles:
    """Which keys this process has handed out as local files, and their synced state."""

    def __init__(self, root: Path, state_dir: Path) -> None:
        self.root = root
        self._state_dir = state_dir
        self._lock = threading.Lock()
        self._states: dict[str, FileState | None] = {}  # None: registered, never synced

    def path_for(self, key: str) -> Path:
        """Absolute path of a normalized key's file; guaranteed to stay under the root."""
        root = self.root.resolve()
        path = (root / local_relative_path(key)).resolve()
        if not path.is_relative_to(root):
            raise InvalidKeyError(f"Invalid key {key!r}: its local path leaves {root}")
        return path

    def key_lock(self, key: str) -> FileLock:
        """A lock on one key's file, shared by every process on the node."""
        private_directory(self._state_dir)
        return FileLock(str(self._record_path(key).with_suffix(".lock")), timeout=600)

    def _record_path(self, key: str) -> Path:
        name = hashlib.sha256(str(self.path_for(key)).encode()).hexdigest()[:32]
        return self._state_dir / f"{name}.json"

    def _load(self, key: str) -> FileState | None:
        try:
            return FileState(**json.loads(self._record_path(key).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    # -- registry --------------------------------------------------------------------------

    def register(self, key: str, state: FileState | None = None) -> None:
        """Track the key's file in this process (with its known synced state, if any)."""
        with self._lock:
            if self._states.get(key) is None:
                self._states[key] = state

    def is_registered(self, key: str) -> bool:
        with self._lock:
            return key in self._states

    def registered_keys(self) -> list[str]:
        with self._lock:
            return list(self._states)

    def state(self, key: str) -> FileState | None:
        """The file's last synced state, from this process or from the node's record."""
        with self._lock:
            state = self._states.get(key)
        return state if state is not None else self._load(key)

    def forget(self, key: str, remove_file: bool = True) -> None:
        with self._lock:
            self._states.pop(key, None)
        if remove_file:
            self.path_for(key).unlink(missing_ok=True)
            self._record_path(key).unlink(missing_ok=True)

    def record(self, key: str, etag: str | None, before: os.stat_result | None = None) -> None:
        """Remember the file as synced with `etag`.

        `before` is the file's stat taken before an upload started: a write during the
        upload then shows as a change. A file written within the racy window also gets
        its digest recorded.
        """
        path = self.path_for(key)
        stat = before or path.stat()
        now = time.time_ns()
        digest = file_digest(path) if stat.st_mtime_ns >= now - _RACY_WINDOW_NS else None
        state = FileState(stat.st_size, stat.st_mtime_ns, stat.st_ino, etag, digest, now)
        with self._lock:
            self._states[key] = state
        private_directory(self._state_dir)
        record = self._record_path(key)
        temporary = record.with_name(f".{record.name}.{os.getpid()}.{threading.get_ident()}")
        temporary.write_text(json.dumps(asdict(state)))
        temporary.replace(record)

    # -- change detection ------------------------------------------------------------------

    def is_changed(self, key: str) -> bool:
        """True if the key's file exists and differs from its last synced state."""
        path = self.path_for(key)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return False
        state = self.state(key)
        if state is None:
            return True
        same_stat = (stat.st_size, stat.st_mtime_ns, stat.st_ino) == (
            state.size,
            state.mtime_ns,
            state.inode,
        )
        if state.digest is None:
            return not same_stat
        if same_stat and stat.st_mtime_ns < state.recorded_ns - _RACY_WINDOW_NS:
            return False
        # Too recent to trust, or touched with the same size: the content decides.
        if stat.st_size != state.size:
            return True
        return file_digest(path) != state.digest

    def changed_keys(self) -> list[str]:
        return [key for key in self.registered_keys() if self.is_changed(key)]

    @staticmethod
    def modified_after(path: Path, last_modified: datetime | None) -> bool:
        """Whether the local file was written after the bucket's object (unsynced work).

        S3 reports LastModified in whole seconds, after the upload that follows the write:
        a margin keeps a file we uploaded ourselves from looking newer than its object.
        """
        if last_modified is None or not path.exists():
            return False
        return path.stat().st_mtime_ns > _ns(last_modified) + _RACY_WINDOW_NS

    @staticmethod
    def stamp(path: Path, last_modified: datetime | None) -> None:
        """Give a downloaded file the object's LastModified as its mtime."""
        if last_modified is not None:
            moment = _ns(last_modified)
            os.utime(path, ns=(moment, moment))

    def temporary_path(self, key: str) -> Path:
        """A unique sibling of the key's path to download into before renaming."""
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
