"""Local files for `get_file_path`: real files under `local_root/<organization_id>/`.

A key's file is downloaded to a temporary name beside it and renamed into place, so the
path never holds half a file. Each file's state at its last sync (size, mtime, inode and
a content digest) is remembered; a file is "changed" when that state differs. A rewrite
of equal size inside the file system's timestamp granularity is caught by comparing the
digest whenever the mtime is too recent to trust (git's "racy clean" rule).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidKeyError
from .keys import local_relative_path

__all__ = ["FileState", "LocalFiles"]

_RACY_WINDOW_NS = 2_000_000_000  # mtimes this close to the recording time are not trusted
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FileState:
    """A local file as it was when last synced with the bucket."""

    size: int
    mtime_ns: int
    inode: int
    digest: str
    etag: str | None  # the bucket object's ETag it matches; None if not in the bucket yet
    recorded_ns: int


def file_digest(path: Path) -> str:
    """BLAKE2b of a file, read in chunks (bounded memory)."""
    digest = hashlib.blake2b(digest_size=20)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class LocalFiles:
    """Which keys this process has handed out as local files, and their synced state."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._states: dict[str, FileState | None] = {}  # None: registered, never synced

    def path_for(self, key: str) -> Path:
        """Absolute path of a normalized key's file; guaranteed to stay under the root."""
        root = self.root.resolve()
        path = (root / local_relative_path(key)).resolve()
        if not path.is_relative_to(root):
            raise InvalidKeyError(f"Invalid key {key!r}: its local path leaves {root}")
        return path

    # -- registry --------------------------------------------------------------------------

    def register(self, key: str) -> None:
        with self._lock:
            self._states.setdefault(key, None)

    def is_registered(self, key: str) -> bool:
        with self._lock:
            return key in self._states

    def registered_keys(self) -> list[str]:
        with self._lock:
            return list(self._states)

    def state(self, key: str) -> FileState | None:
        with self._lock:
            return self._states.get(key)

    def forget(self, key: str, remove_file: bool = True) -> None:
        with self._lock:
            self._states.pop(key, None)
        if remove_file:
            self.path_for(key).unlink(missing_ok=True)

    def record(self, key: str, etag: str | None) -> FileState:
        """Remember the file's current state as synced with `etag`."""
        path = self.path_for(key)
        stat = path.stat()
        state = FileState(
            stat.st_size, stat.st_mtime_ns, stat.st_ino, file_digest(path), etag, time.time_ns()
        )
        with self._lock:
            self._states[key] = state
        return state

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
        if (stat.st_size, stat.st_mtime_ns, stat.st_ino) != (
            state.size,
            state.mtime_ns,
            state.inode,
        ):
            return file_digest(path) != state.digest
        if stat.st_mtime_ns >= state.recorded_ns - _RACY_WINDOW_NS:
            return file_digest(path) != state.digest
        return False

    def has_content(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def changed_keys(self) -> list[str]:
        return [key for key in self.registered_keys() if self.is_changed(key)]

    def temporary_path(self, key: str) -> Path:
        """A unique sibling of the key's path to download into before renaming."""
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
