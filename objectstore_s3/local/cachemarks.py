"""What the node cache keeps beside its SQLite database, so that every process of the node
agrees on it whatever SQLite could not do: which database is the node's current one (its
epoch), and which keys' entries no process may serve (stale markers).

SQLite cannot tell a process that the file it holds open was replaced, nor take a write
while its lock is busy or the disk is full. So both facts are names in the cache folder,
and a cache hit checks them with one `lstat` of `marks.<epoch>/<key's hash>`:

- Missing: the entry is valid. Present: the key's entry may be stale, a miss.
- ENOTDIR: the epoch was *retired*. A repair (real damage) retires the database's
  `marks.<epoch>` folder under the folder lock before removing the database: the folder is
  replaced by a plain file, so every lookup under it fails with ENOTDIR and each process
  moves to the new database at its next hit or write. The retired names stay (one empty
  file per repair): a process idle since may still look there, and a missing name would
  read as "valid".

A stale marker is a folder holding one file per failed update. It is made before a write
returns whenever the write's database update failed (a busy lock, a full disk). A later
update of the key resolves it: inside its transaction it lists the files, bumps the key's
generation and deletes its entry, and only after the commit removes exactly the files it
listed, then the folder if empty. Every write whose marker it removes was accepted before
the listing, so before the commit that made every older fill and entry void; a marker
made after the listing keeps its folder (rmdir is the atomic "unless a newer writer marked
it"). A process killed before the commit leaves the marker in place: still a miss.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

__all__ = ["CacheMarks", "is_damage", "remove_diskcache_files"]

_EPOCH = re.compile(r"^marks\.([0-9a-f]{16})$")
_RETIRED = re.compile(r"^retired\.[0-9a-f]{16}\.[0-9a-f]{8}$")
_HASHED = re.compile(r"^[0-9a-f]{32}$|^[0-9a-f]{16}$")
_DISKCACHE_FILES = re.compile(r"^cache\.db(-wal|-shm|-journal)?$")
_VALUE_FOLDER = re.compile(r"^[0-9a-f]{2}$")
_CORRUPT, _NOTADB = 11, 26  # SQLite's primary result codes for a database it cannot read
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def is_damage(exc: BaseException) -> bool:
    """A database SQLite cannot read (malformed, not a database): repaired by a new cache.
    Anything else (a busy lock, a full disk or quota, an I/O error) fails one update and is
    handled without replacing the database."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_CORRUPT, _NOTADB)
    return type(exc) is sqlite3.DatabaseError  # raised without a code: not a database


class CacheMarks:
    """The epoch folders and stale markers of one cache folder."""

    def __init__(self, directory: Path) -> None:
        self._folder = str(directory)

    def _marks(self, epoch: int) -> str:
        return os.path.join(self._folder, f"marks.{epoch:016x}")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The folder lock: opening, starting and retiring epochs happen one at a time."""
        path = os.path.join(self._folder, "epoch.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    # -- epochs --------------------------------------------------------------------------

    def is_live(self, epoch: int) -> bool:
        try:
            return stat.S_ISDIR(os.lstat(self._marks(epoch)).st_mode)
        except OSError:
            return False

    def is_retired(self, epoch: int) -> bool:
        try:
            return not stat.S_ISDIR(os.lstat(self._marks(epoch)).st_mode)
        except FileNotFoundError:
            return False

    def start(self, epoch: int) -> None:
        """Make the epoch's marker folder and its tomb (the file a retire puts in its
        place: renaming it there needs no free space)."""
        with contextlib.suppress(FileExistsError):
            os.mkdir(self._marks(epoch), 0o700)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(os.path.join(self._folder, f"tomb.{epoch:016x}"), _CREATE, 0o600))

    def live_epochs(self) -> list[int]:
        found = []
        for name in os.listdir(self._folder):
            match = _EPOCH.match(name)
            if match and self.is_live(int(match.group(1), 16)):
                found.append(int(match.group(1), 16))
        return found

    def retire(self, epoch: int) -> None:
        """Every process leaves the epoch's database at its next hit or write. Call with
        the folder lock held."""
        marks = self._marks(epoch)
        trash = os.path.join(self._folder, f"retired.{epoch:016x}.{secrets.token_hex(4)}")
        with contextlib.suppress(FileNotFoundError):
            os.rename(marks, trash)
        try:
            os.rename(os.path.join(self._folder, f"tomb.{epoch:016x}"), marks)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                os.close(os.open(marks, _CREATE, 0o600))

    def retire_all(self) -> None:
        for epoch in self.live_epochs():
            self.retire(epoch)

    def sweep(self) -> None:
        """Remove the markers of retired epochs (no process looks inside them any more)."""
        for name in os.listdir(self._folder):
            if _RETIRED.match(name):
                _remove_marker_tree(os.path.join(self._folder, name))

    # -- stale markers -------------------------------------------------------------------

    def prefix(self, epoch: int) -> str:
        """The epoch's marker folder, as a hit's `lstat` of prefix + marker name takes it."""
        return self._marks(epoch) + os.sep

    def mark(self, epoch: int, name: str) -> None:
        """Mark the key's entry stale in `epoch` (a retired epoch needs none: no process
        reads its database any more). Raises OSError if no marker could be made."""
        folder = os.path.join(self._marks(epoch), name)
        for _ in range(8):
            try:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(folder, 0o700)
                path = os.path.join(folder, secrets.token_hex(8))
                os.close(os.open(path, _CREATE, 0o600))
                return
            except NotADirectoryError:
                return
            except FileNotFoundError:
                # Resolved between our mkdir and our file (mark again), or the epoch is
                # being retired (its folder is briefly missing: wait for the folder lock).
                if not self.is_live(epoch) and not self._waited_live(epoch):
                    return  # retired, or the folder was removed: nobody opens it again
        raise OSError(errno.EAGAIN, "the stale marker kept being removed", folder)

    def _waited_live(self, epoch: int) -> bool:
        """Whether the epoch is live once a retire in progress (if any) has finished."""
        try:
            with self.locked():
                return self.is_live(epoch)
        except FileNotFoundError:
            return False  # the cache folder itself is gone

    def seen(self, epoch: int, name: str) -> list[str] | None:
        """The marker's files (None: no marker). Called inside the resolving transaction."""
        try:
            return os.listdir(os.path.join(self._marks(epoch), name))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def release(self, epoch: int, name: str, seen: list[str]) -> None:
        """After the resolving commit: remove the files it listed, and the marker if no
        newer writer added one."""
        folder = os.path.join(self._marks(epoch), name)
        for entry in seen:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, entry))
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def _remove_marker_tree(path: str) -> None:
    """A retired epoch's markers: folders of hashed names holding files of hex names."""
    with contextlib.suppress(OSError):
        for marker in os.listdir(path):
            inner = os.path.join(path, marker)
            if not _HASHED.match(marker):
                continue
            with contextlib.suppress(OSError):
                for entry in os.listdir(inner):
                    if _HASHED.match(entry):
                        with contextlib.suppress(OSError):
                            os.unlink(os.path.join(inner, entry))
            with contextlib.suppress(OSError):
                os.rmdir(inner)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def remove_diskcache_files(folder: Path) -> None:
    """Delete the database and value files diskcache creates, and nothing else."""
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            path = folder / name
            if _DISKCACHE_FILES.match(name):
                with contextlib.suppress(OSError):
                    path.unlink()
            elif _VALUE_FOLDER.match(name) and path.is_dir():
                _remove_value_files(path)


def _remove_value_files(folder: Path) -> None:
    for root, folders, files in os.walk(folder, topdown=False):
        for name in files:
            if name.endswith(".val"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(root, name))
        for name in folders:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(root, name))  # only if empty
    with contextlib.suppress(OSError):
        folder.rmdir()
