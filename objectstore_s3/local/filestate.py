"""What this node knows of each local file: which keys this process handed out, and each
file's state at its last sync, so that a change is seen and a half-written file is not.

A file's state (size, mtime, inode, the ETag it matches) is kept in memory and in a small
node-local record, so another process or a later run knows which version a file holds;
a file is "changed" when that state differs. A write can only be missed within the file
system's timestamp granularity (git's "racy clean" case), so for files synced right after
being written the SHA-256 of the content is recorded too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat as stat_module
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from objectstore_s3.errors import InvalidKeyError
from objectstore_s3.fs import atomic_write, private_directory
from objectstore_s3.keys import local_relative_path

__all__ = ["FileState", "FileStates", "file_digest", "modified_after"]

_RACY_WINDOW_NS = 2_000_000_000  # mtimes this close to the recording time are not trusted


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


def modified_after(path: Path, last_modified: float | None) -> bool:
    """Whether a local file was written after the bucket's object (unsynced work).

    S3 reports LastModified in whole seconds, after the upload that follows the write: a
    margin keeps a file we uploaded ourselves from looking newer than it.
    """
    if last_modified is None:
        return False
    return path.stat().st_mtime_ns > int(last_modified * 1e9) + _RACY_WINDOW_NS


def _signature(info: os.stat_result) -> tuple[int, int, int]:
    return (info.st_size, info.st_mtime_ns, info.st_ino)


class FileStates:
    """The keys handed out as local files in this process, and every file's synced state:
    what this node knows of its local files (the files themselves: `LocalFiles`)."""

    def __init__(self, root: Path, state_dir: Path) -> None:
        self.root = root
        self._state_dir = state_dir
        self._lock = threading.Lock()
        self._states: dict[str, FileState | None] = {}  # None: registered, never synced
        self._looks: dict[str, tuple[tuple[int, int, int], float]] = {}

    def path_for(self, key: str) -> Path:
        """Absolute path of a normalized key's file; guaranteed to stay under the root."""
        root = self.root.resolve()
        path = (root / local_relative_path(key)).resolve()
        if not path.is_relative_to(root):
            raise InvalidKeyError(f"Invalid key {key!r}: its local path leaves {root}")
        return path

    def _record_path(self, key: str) -> Path:
        name = hashlib.sha256(str(self.path_for(key)).encode()).hexdigest()[:32]
        return self._state_dir / f"{name}.json"

    def lock_path(self, key: str) -> Path:
        """Where the node-wide lock on one key's file lives (beside its record)."""
        private_directory(self._state_dir)
        return self._record_path(key).with_suffix(".lock")

    # -- registry ------------------------------------------------------------------------

    def register(self, key: str, state: FileState | None = None) -> None:
        """Track the key's file in this process (with its known synced state, if any)."""
        with self._lock:
            if state is not None or key not in self._states:
                self._states[key] = state

    def is_registered(self, key: str) -> bool:
        return key in self._states

    def registered_keys(self) -> list[str]:
        with self._lock:
            return list(self._states)

    def state(self, key: str) -> FileState | None:
        """The file's last synced state, from this process or from the node's record."""
        state = self._states.get(key)
        if state is not None:
            return state
        try:
            return FileState(**json.loads(self._record_path(key).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def clear_state(self, key: str) -> None:
        """The key's file was removed: it stays registered, with no synced state."""
        self._record_path(key).unlink(missing_ok=True)
        with self._lock:
            self._states[key] = None

    def unregister(self, key: str) -> None:
        """Stop tracking the key in this process; its file and record stay."""
        with self._lock:
            self._states.pop(key, None)
            self._looks.pop(key, None)

    def forget(self, key: str) -> None:
        """Stop tracking the key and remove its file and record (a delete)."""
        with self._lock:
            self._states.pop(key, None)
            self._looks.pop(key, None)
        path = self.path_for(key)
        if path.is_file() or path.is_symlink():
            path.unlink(missing_ok=True)
        self._record_path(key).unlink(missing_ok=True)

    def record(self, key: str, etag: str | None, before: os.stat_result | None = None) -> None:
        """Remember the file as synced with `etag` (`before`: its stat before an upload
        began, so that a write during the upload shows as a change)."""
        path = self.path_for(key)
        with contextlib.suppress(OSError):
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)  # a user's data file: readable by its owner only
        info = before or path.stat()
        now = time.time_ns()
        digest = file_digest(path) if info.st_mtime_ns >= now - _RACY_WINDOW_NS else None
        state = FileState(info.st_size, info.st_mtime_ns, info.st_ino, etag, digest, now)
        with self._lock:
            self._states[key] = state
            self._looks.pop(key, None)
        private_directory(self._state_dir)
        atomic_write(self._record_path(key), json.dumps(asdict(state)).encode())

    def rebase(self, key: str, etag: str | None) -> None:
        """The bucket's object changed under a file with local changes (our own upload of
        an older value): keep the file and its changes, against the new ETag."""
        state = self.state(key)
        if state is None:
            return
        rebased = replace(state, etag=etag)
        with self._lock:
            self._states[key] = rebased
        atomic_write(self._record_path(key), json.dumps(asdict(rebased)).encode())

    # -- change detection ------------------------------------------------------------------

    def is_changed(self, key: str) -> bool:
        """True if the key's file exists and differs from its last synced state."""
        path = self.path_for(key)
        try:
            info = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return False
        if not stat_module.S_ISREG(info.st_mode):
            return False
        state = self.state(key)
        if state is None:
            return True
        same_stat = _signature(info) == (state.size, state.mtime_ns, state.inode)
        if state.digest is None:
            return not same_stat
        if same_stat and info.st_mtime_ns < state.recorded_ns - _RACY_WINDOW_NS:
            return False
        # Too recent to trust, or touched with the same size: the content decides.
        if info.st_size != state.size:
            return True
        return file_digest(path) != state.digest

    def changed_keys(self) -> list[str]:
        return [key for key in self.registered_keys() if self.is_changed(key)]

    def has_content(self, key: str) -> bool:
        """Whether a registered key's file exists (else it reads as None, as LEAN's)."""
        return self.path_for(key).is_file()

    def settled(self, key: str, interval: float) -> os.stat_result | None:
        """The file's stat if it has stopped changing: the same size, mtime and inode at
        two looks at least `interval` apart. The first look only starts the clock."""
        try:
            info = self.path_for(key).stat()
        except FileNotFoundError:
            return None
        now = time.monotonic()
        with self._lock:
            seen = self._looks.get(key)
            if seen is None or seen[0] != _signature(info):
                self._looks[key] = (_signature(info), now)
                return None
            return info if now - seen[1] >= interval else None

    @staticmethod
    def unchanged_since(path: Path, before: os.stat_result) -> Callable[[], bool]:
        """A check that the file is still as `before` (asked before an upload completes)."""

        def check() -> bool:
            try:
                return _signature(path.stat()) == _signature(before)
            except FileNotFoundError:
                return False

        return check
