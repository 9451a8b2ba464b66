"""Local files for `get_file_path`: real files under `local_root/<organization_id>/`.

Like fsspec's `LocalTempFile`, a key's file is a real local file that is uploaded when it
is committed: on `save(key)`, or by the automatic syncs once it has stopped changing (the
writer does the uploads). A file is brought in by downloading to a temporary sibling and
renaming (the path never holds half a file), with the object's Last-Modified as its
mtime, as rsync does; a file with unsynced changes is never replaced. Keys `a` and `a/b`
cannot both have files: that clash is an error naming it. Folders are 0700, files 0600.

An earlier version of a key gets a read-only file (0400) beside the key's own, in
`<key's file>~versions/`: '~' is in no key, so that folder is never a key's path; a
version's file is never registered, so it is never synced back.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from filelock import FileLock

from objectstore_s3.errors import LocalFileConflictError, LocalPathClashError
from objectstore_s3.fs import (
    atomic_write,
    private_directory,
    remove_stale_temporaries,
    temporary_name,
)
from objectstore_s3.transport.base import ObjectInfo

from .filestate import FileState, FileStates, modified_after

__all__ = ["VERSIONS_SUFFIX", "FileState", "LocalFiles"]

VERSIONS_SUFFIX = "~versions"  # '~' is in no key: the folder is never a key's path


class LocalFiles:
    """The node's local files: materialized from the bucket, written, checked for clashes.
    What is known of each file (registration, synced state, changes) is `states`'."""

    def __init__(self, states: FileStates) -> None:
        self.states = states
        self.root = states.root

    def path_for(self, key: str) -> Path:
        return self.states.path_for(key)

    def prepare(self, key: str) -> Path:
        """The key's path with its folders made (0700); a clash with another key's file
        (`a` is a file and `a/b` is wanted, or the other way) is a LocalPathClashError."""
        path = self.path_for(key)
        self._check_parents(key, path)
        if path.is_dir():
            under = [k for k in self.states.registered_keys() if k.startswith(key + "/")]
            try:
                if under:
                    raise OSError("needed by a registered key")
                path.rmdir()  # an empty folder left by a key that is gone
            except OSError:
                raise self._clash(key, path) from None
        private_directory(path.parent)
        remove_stale_temporaries(path.parent)
        return path

    def _check_parents(self, key: str, path: Path) -> None:
        root = self.root.resolve()
        for parent in reversed(path.relative_to(root).parents):
            folder = root / parent
            if folder.exists() and not folder.is_dir():
                raise self._clash(key, folder)

    def _clash(self, key: str, where: Path) -> LocalPathClashError:
        kind = "a folder" if where.is_dir() else "a file"
        return LocalPathClashError(
            f"The local file for '{key}' cannot be created: {where} is {kind} of another "
            "key's. Keys 'a' and 'a/b' can both live in the bucket, but not both as local "
            "files: read this one with read_bytes(key), or delete the other key's file."
        )

    def key_lock(self, key: str) -> FileLock:
        """A lock on one key's file, shared by every process on the node."""
        return FileLock(str(self.states.lock_path(key)), timeout=600)

    # -- writing files -------------------------------------------------------------------

    def write(self, key: str, data: bytes, etag: str | None) -> Path:
        """Put `data` at the key's path (temporary + rename) and record it as synced."""
        path = self.prepare(key)
        atomic_write(path, data)
        self.states.record(key, etag)
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
        states = self.states
        state = states.state(key)
        if state is not None and path.exists():
            if state.etag == info.etag:
                # Current: synced by this process, another one, or an earlier run; changes
                # since are compared against that state and synced later.
                states.register(key, state)
                return path
            if states.is_changed(key):
                raise self.conflict(key, path)
        elif path.exists() and (
            states.is_registered(key) or modified_after(path, info.last_modified)
        ):
            # Written here for a key that was new (and since created elsewhere), or a file
            # we know nothing about that is newer than the object: unsynced work.
            raise self.conflict(key, path)
        return self._download_to(key, path, download)

    def overwrite(self, key: str, download: Callable[[Path], ObjectInfo]) -> Path:
        """Make the key's file hold a download of what the bucket holds now, replacing
        local changes as a save's value does (a restore or a copy onto the key)."""
        return self._download_to(key, self.prepare(key), download)

    def _download_to(self, key: str, path: Path, download: Callable[[Path], ObjectInfo]) -> Path:
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
        self.states.record(key, got.etag)
        return path

    def version_path(self, key: str, version_id: str) -> Path:
        """Where a version's read-only file goes (the id escaped: S3's may hold '/')."""
        path = self.path_for(key)
        name = quote(version_id, safe="").replace(".", "%2E")  # never '.' or '..'
        return path.with_name(path.name + VERSIONS_SUFFIX) / name

    def keep_version(
        self, key: str, version_id: str, write: Callable[[Path], object], *, immutable: bool
    ) -> Path:
        """A version's file, read-only (0400): `write(temporary)` fills it once, unless an
        `immutable` version's file is there already (versions never change; the "null"
        version, written while versioning was off, may)."""
        path = self.version_path(key, version_id)
        self._check_parents(key, path.parent)
        private_directory(path.parent)
        if immutable and _read_only_file(path):
            return path
        remove_stale_temporaries(path.parent)
        temporary = temporary_name(path, "part")
        try:
            write(temporary)
            os.chmod(temporary, 0o400)
            temporary.replace(path)
        finally:
            temporary.unlink(missing_ok=True)
        return path

    def start_empty(self, key: str) -> Path:
        """Register a key the bucket does not have; a stale, unchanged copy is removed."""
        path = self.prepare(key)
        states = self.states
        if path.exists() and states.state(key) is not None and not states.is_changed(key):
            path.unlink()
            states.clear_state(key)
        states.register(key)
        return path

    @staticmethod
    def conflict(key: str, path: Path) -> LocalFileConflictError:
        return LocalFileConflictError(
            f"The local file for '{key}' at {path} has changes that were not saved, and the "
            "bucket's copy changed too; neither was overwritten. Call save(key) to keep "
            "yours, or delete the local file and call get_file_path(key) to take the bucket's."
        )


def _read_only_file(path: Path) -> bool:
    """Whether `path` is a regular file of ours that nobody may write (as we leave them)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    mode = stat.S_IMODE(info.st_mode)
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and mode == 0o400
