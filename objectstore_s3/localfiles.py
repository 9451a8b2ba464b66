"""Local files for `get_file_path`: real files under `local_root/<organization_id>/`.

Like fsspec's `LocalTempFile`, a key's file is a real local file that is uploaded when it
is committed: on `save(key)`, or by the automatic syncs once it has stopped changing. A
file is brought in by downloading to a temporary sibling and renaming (the path never
holds half a file), with the object's Last-Modified as its mtime (as rsync does).

Each file's state at its last sync (size, mtime, inode, the ETag it matches) is kept in
memory and in a small node-local record, so another process or a later run knows which
version a file holds; a file is "changed" when that state differs. A write can only be
missed within the file system's timestamp granularity (git's "racy clean" case), so for
files synced right after being written the SHA-256 of the content is recorded too.
Folders are created 0700 and files 0600.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat as stat_module
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from filelock import FileLock

from .backend import ObjectInfo
from .errors import InvalidKeyError, LocalFileConflictError, LocalPathClashError
from .fs import atomic_write, private_directory, remove_stale_temporaries, temporary_name
from .keys import local_relative_path

__all__ = ["FileState", "LocalFiles", "file_digest"]

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


def _signature(info: os.stat_result) -> tuple[int, int, int]:
    return (info.st_size, info.st_mtime_ns, info.st_ino)


class LocalFiles:
    """Which keys this process has handed out as local files, and their synced state."""

    def __init__(self, root: Path, state_dir: Path) -> None:
        self.root = root
        self._state_dir = state_dir
        self._lock = threading.Lock()
        self._states: dict[str, FileState | None] = {}  # None: registered, never synced
        self._looks: dict[str, tuple[tuple[int, int, int], float]] = {}

    # -- paths -------------------------------------------------------------------------

    def path_for(self, key: str) -> Path:
        """Absolute path of a normalized key's file; guaranteed to stay under the root."""
        root = self.root.resolve()
        path = (root / local_relative_path(key)).resolve()
        if not path.is_relative_to(root):
            raise InvalidKeyError(f"Invalid key {key!r}: its local path leaves {root}")
        return path

    def prepare(self, key: str) -> Path:
        """The key's path with its folders made (0700); a clash with another key's file
        (`a` is a file and `a/b` is wanted, or the other way) is a LocalPathClashError."""
        path = self.path_for(key)
        root = self.root.resolve()
        for parent in reversed(path.relative_to(root).parents):
            folder = root / parent
            if folder.exists() and not folder.is_dir():
                raise self._clash(key, folder)
        if path.is_dir():
            under = [other for other in self._states if other.startswith(key + "/")]
            try:
                if under:
                    raise OSError("needed by a registered key")
                path.rmdir()  # an empty folder left by a key that is gone
            except OSError:
                raise self._clash(key, path) from None
        private_directory(path.parent)
        remove_stale_temporaries(path.parent)
        return path

    def _clash(self, key: str, where: Path) -> LocalPathClashError:
        kind = "a folder" if where.is_dir() else "a file"
        return LocalPathClashError(
            f"The local file for '{key}' cannot be created: {where} is {kind} of another "
            "key's. Keys 'a' and 'a/b' can both live in the bucket, but not both as local "
            "files: read this one with read_bytes(key), or delete the other key's file."
        )

    def key_lock(self, key: str) -> FileLock:
        """A lock on one key's file, shared by every process on the node."""
        private_directory(self._state_dir)
        return FileLock(str(self._record_path(key).with_suffix(".lock")), timeout=600)

    def _record_path(self, key: str) -> Path:
        name = hashlib.sha256(str(self.path_for(key)).encode()).hexdigest()[:32]
        return self._state_dir / f"{name}.json"

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

    # -- writing files -------------------------------------------------------------------

    def write(self, key: str, data: bytes, etag: str | None) -> Path:
        """Put `data` at the key's path (temporary + rename) and record it as synced."""
        path = self.prepare(key)
        atomic_write(path, data)
        self.record(key, etag)
        return path

    def bring_in(
        self,
        key: str,
        info: ObjectInfo,
        download: Callable[[Path], ObjectInfo],
    ) -> Path:
        """Make the key's file hold the bucket's object `info`, never silently replacing
        unsynced local work (LocalFileConflictError names both ways out)."""
        path = self.prepare(key)
        state = self.state(key)
        if state is not None and path.exists():
            if state.etag == info.etag:
                # Current: synced by this process, another one, or an earlier run; changes
                # since are compared against that state and synced later.
                self.register(key, state)
                return path
            if self.is_changed(key):
                raise self.conflict(key, path)
        elif path.exists() and (
            self.is_registered(key) or self._modified_after(path, info.last_modified)
        ):
            # Written here for a key that was new (and since created elsewhere), or a file
            # we know nothing about that is newer than the object: unsynced work.
            raise self.conflict(key, path)
        temporary = temporary_name(path, "part")
        try:
            got = download(temporary)
            if got.last_modified is not None:
                moment = int(got.last_modified) * 1_000_000_000
                os.utime(temporary, ns=(moment, moment))
            os.chmod(temporary, 0o600)
            temporary.replace(path)
        finally:
            temporary.unlink(missing_ok=True)
        self.record(key, got.etag)
        return path

    def start_empty(self, key: str) -> Path:
        """Register a key the bucket does not have; a stale, unchanged copy is removed."""
        path = self.prepare(key)
        if path.exists() and self.state(key) is not None and not self.is_changed(key):
            path.unlink()
            self._record_path(key).unlink(missing_ok=True)
            with self._lock:
                self._states[key] = None
        self.register(key)
        return path

    @staticmethod
    def conflict(key: str, path: Path) -> LocalFileConflictError:
        return LocalFileConflictError(
            f"The local file for '{key}' at {path} has changes that were not saved, and the "
            "bucket's copy changed too; neither was overwritten. Call save(key) to keep "
            "yours, or delete the local file and call get_file_path(key) to take the bucket's."
        )

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

    @staticmethod
    def _modified_after(path: Path, last_modified: float | None) -> bool:
        """Whether a local file was written after the bucket's object (unsynced work).

        S3 reports LastModified in whole seconds, after the upload that follows the
        write: a margin keeps a file we uploaded ourselves from looking newer than it.
        """
        if last_modified is None:
            return False
        return path.stat().st_mtime_ns > int(last_modified * 1e9) + _RACY_WINDOW_NS
