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
    "open_private",
    "pid_alive",
    "private_directory",
    "read_private",
    "remove_stale_temporaries",
    "temporary_name",
    "write_private",
]

_TEMPORARY = re.compile(r"^\..+\.(\d+)\.(\d+)\.(?:part|tmp)$")


def check_private(path: Path, what: str = "folder") -> os.stat_result:
    """Refuse `path` unless it belongs to the current user and others cannot write to it.
    A symbolic link is followed only if it is the user's (or root's): another user's link
    could be pointed elsewhere at any time."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        if info.st_uid not in (os.getuid(), 0):
            raise UnsafeFolderError(
                f"Refusing to use the {what} {path}: it is a symbolic link that belongs to "
                f"uid {info.st_uid}, who could point it anywhere. Remove it, or point the "
                "setting at a folder of your own."
            )
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


def private_directory(path: Path, what: str = "folder") -> None:
    """Create `path` and missing parents owner-only (0700); an existing `path` must pass
    `check_private` (the error calls it `what`) and is tightened to 0700 (it is ours)."""
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
        info = check_private(path, what)
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(path, 0o700)
    except UnsafeFolderError:
        raise
    except OSError as exc:
        raise LocalStorageError(f"Cannot create the folder {path}: {exc.strerror}") from exc


def temporary_name(path: Path, suffix: str = "tmp") -> Path:
    """A sibling of `path` unique to this process and thread, recognizable as ours later."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{suffix}")


def write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write `data` to `path`, creating it owner-only (0600). `exclusive` refuses anything
    already at `path`, a symbolic link included (O_EXCL never follows one); otherwise a
    file the caller named (a symbolic link of theirs too) is overwritten."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL | os.O_NOFOLLOW if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        if exclusive:
            os.fchmod(fd, 0o600)  # the umask could have left less; never more
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a new temporary sibling and a rename (owner-only):
    a symbolic link at `path` is replaced, never followed."""
    temporary = temporary_name(path)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)  # a leftover of a dead process that had our PID
        write_private(temporary, data, exclusive=True)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise LocalStorageError(f"Cannot write {path}: {exc.strerror}") from exc


def read_private(path: Path, what: str) -> bytes | None:
    """The content of the regular file `path`, None if there is none. A symbolic link, or a
    file someone else owns or may write, is refused (`UnsafeFolderError`): it could have
    been planted there, and what it says would be trusted."""
    try:
        fd = open_private(path, what, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as file:
        return file.read()


def open_private(path: Path, what: str, flags: int) -> int:
    """`os.open` of the file `path` (created 0600 with O_CREAT in `flags`), never through a
    symbolic link; an existing file must be a regular one, the user's, that others may not
    write (`UnsafeFolderError` otherwise), and is made owner-only. FileNotFoundError passes
    through."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if not path.is_symlink():
            raise LocalStorageError(f"Cannot open the {what} {path}: {exc.strerror}") from exc
        problem: str | None = "it is a symbolic link"
    else:
        info = os.fstat(fd)
        problem = _unsafe_file(info)
        if problem is None:
            if info.st_mode & 0o077:
                os.fchmod(fd, 0o600)  # ours: others need not read it either (older files)
            return fd
        os.close(fd)
    raise UnsafeFolderError(
        f"Refusing to use the {what} {path}: {problem}, so another local user could have "
        "put it there. Delete it if you did not (it is written again when needed), or point "
        "the setting at a folder of your own."
    )


def _unsafe_file(info: os.stat_result) -> str | None:
    """Why a file with this `fstat` cannot be trusted, or None."""
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    if info.st_uid != os.getuid():
        return f"it belongs to uid {info.st_uid}"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"others may write to it (mode {stat.S_IMODE(info.st_mode):o})"
    return None


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
