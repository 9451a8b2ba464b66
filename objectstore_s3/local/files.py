"""Local files for `get_file_path`: real files under `local_root/<organization_id>/`.

Like fsspec's `LocalTempFile`, a key's file is a real local file that is uploaded when it
is committed: on `save(key)`, or by the automatic syncs once it has stopped changing (the
writer does the uploads). A file is brought in by downloading to a temporary sibling and
renaming (the path never holds half a file), with the object's Last-Modified as its
mtime, as rsync does; a file with unsynced changes is never replaced. Keys `a` and `a/b`
cannot both have files: that clash is an error naming it. Folders are 0700, files 0600.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from objectstore_s3.errors import LocalFileConflictError, LocalPathClashError
from objectstore_s3.fs import (
    atomic_write,
    private_directory,
    remove_stale_temporaries,
    temporary_name,
)
from objectstore_s3.transport.base import ObjectInfo

from .filestate import _RACY_WINDOW_NS, FileState, FileStates

if TYPE_CHECKING:
    from objectstore_s3.node.view import NodeView
    from objectstore_s3.transport.base import Backend

__all__ = ["FileState", "LocalFiles"]


class LocalFiles(FileStates):
    """The node's local files: materialized from the bucket, written, checked for clashes."""

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

    @staticmethod
    def _modified_after(path: Path, last_modified: float | None) -> bool:
        """Whether a local file was written after the bucket's object (unsynced work).

        S3 reports LastModified in whole seconds, after the upload that follows the
        write: a margin keeps a file we uploaded ourselves from looking newer than it.
        """
        if last_modified is None:
            return False
        return path.stat().st_mtime_ns > int(last_modified * 1e9) + _RACY_WINDOW_NS

    def materialize(self, key: str, view: NodeView, objects: Backend) -> Path:
        """The key's file, holding what the key holds on this node: its pending value, the
        bucket's object, or nothing yet (a key that does not exist is registered)."""
        state = view.state(key)
        if state.kind == "registered":
            return self.prepare(key)
        if state.kind == "pending_put":
            assert state.entry is not None
            data = view.journal.data(state.entry)
            if data is not None:
                return self.write(key, data, None)
        if state.kind == "pending_delete":
            return self.start_empty(key)
        info = objects.head(key)
        if info is None:
            # The user's own work for a key the bucket does not have stays as it is.
            return self.prepare(key) if state.kind == "local" else self.start_empty(key)
        path = self.bring_in(key, info, lambda target: objects.download(key, target))
        self.register(key, self.state(key))
        cached = view.cache.meta(key)
        if cached is not None and cached.etag != info.etag:
            view.cache.invalidate(key)  # the file shows a newer object than the cache
        return path
