"""Local filesystem helpers: owner-only folders, their ownership check, atomic writes,
and the clean-up of temporary files that dead processes left behind (`pid_alive`, also
the local servers' liveness check).

Users' data (local files, the cache, the journal) lives in folders only the user can
enter. A folder someone else owns, or one others may write into, is refused: a journal
segment planted there would otherwise be uploaded with the user's credentials.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import threading
from pathlib import Path

from .errors import LocalStorageError, UnsafeFolderError

__all__ = [
    "atomic_write",
    "check_private",
    "pid_alive",
    "private_directory",
    "remove_stale_temporaries",
    "temporary_name",
    "write_private",
]

_TEMPORARY = re.compile(r"^\..+\.(\d+)\.(\d+)\.(?:part|tmp)$")


def check_private(path: Path, what: str = "folder") -> os.stat_result:
    """Refuse `path` unless it belongs to the current user and others cannot write to it."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        info = os.stat(path)
    uid = os.getuid()
    if info.st_uid != uid or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        owner = "you" if info.st_uid == uid else f"uid {info.st_uid}"
        raise UnsafeFolderError(
            f"Refusing to use the {what} {path}: it belongs to {owner} with mode "
            f"{stat.S_IMODE(info.st_mode):o}, so other local users could write into it. Use "
            f"a folder of your own (chmod 700 {path}), or point the setting at another one."
        )
    return info


def private_directory(path: Path) -> None:
    """Create `path` and missing parents owner-only (0700); an existing `path` must pass
    `check_private` and is tightened to 0700 (it is ours)."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    try:
        for folder in reversed(missing):
            with contextlib.suppress(FileExistsError):  # another process made it meanwhile
                folder.mkdir(mode=0o700)
                os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
        info = check_private(path)
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(path, 0o700)
    except UnsafeFolderError:
        raise
    except OSError as exc:
        raise LocalStorageError(f"Cannot create the folder {path}: {exc.strerror}") from exc


def temporary_name(path: Path, suffix: str = "tmp") -> Path:
    """A sibling of `path` unique to this process and thread, recognizable as ours later."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{suffix}")


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path`, creating it owner-only (0600), whole or not at all."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary sibling and a rename (owner-only)."""
    temporary = temporary_name(path)
    try:
        write_private(temporary, data)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise LocalStorageError(f"Cannot write {path}: {exc.strerror}") from exc


def remove_stale_temporaries(folder: Path) -> int:
    """Delete our temporary files in `folder` whose process is gone; returns how many."""
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        match = _TEMPORARY.match(name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(folder / name)
            removed += 1
    return removed


def pid_alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not: it has exited, unreaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    # Another process's zombie (e.g. a server started by a notebook, stopped by the CLI).
    with contextlib.suppress(OSError, IndexError):
        stat_line = Path(f"/proc/{pid}/stat").read_text()
        return stat_line[stat_line.rindex(")") + 2] != "Z"
    return True
