"""Whole objects and their metadata, the CLI's operations: `stat`, `list_objects`,
`download_file` and `upload_file` stream a key's value to or from a local file (ranged
parts and multipart, bounded memory) and report size, ETag and time; `presign_url`
gives a URL that downloads it without credentials. Like the typed
values, each public method validates and then makes one call into the node's parts,
which `ObjectStore` provides.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from .errors import KeyNotFoundError
from .lean import ObjectStat
from .node.node import Parts
from .node.view import Listed
from .values import TypedValues, expectation

__all__ = ["MAX_PRESIGN_SECONDS", "WholeObjects", "stat_of"]

Progress = Callable[[int], None]
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # S3's limit for a SigV4 presigned URL


class WholeObjects(TypedValues):
    """Streams of whole objects to and from local files, and their metadata."""

    @property
    @abstractmethod
    def _parts(self) -> Parts:
        """The node's parts that talk to the bucket (built on first use)."""

    @abstractmethod
    def _require(self, permission: str) -> None:
        """StoragePermissionError unless the settings grant `permission`."""

    @abstractmethod
    def _guarded(self, write: Callable[[], object]) -> bool:
        """Run a write; a quota refusal is raised or reported per the mode."""

    def stat(self, key: str) -> ObjectStat:
        """Size, ETag and last-modified time of a key; KeyNotFoundError if absent."""
        name = self._key(key)
        self._require("read")
        found = self._parts.view.info(name)
        if found is None:
            raise KeyNotFoundError(name)
        return stat_of(found)

    def list_objects(self, prefix: str = "") -> list[ObjectStat]:
        """Every key starting with `prefix`, sorted, with its size, ETag and time."""
        self._require("read")
        return [stat_of(item) for item in self._parts.view.listing(prefix)]

    def download_file(self, key: str, path: str | Path, progress: Progress | None = None) -> None:
        """Stream a key's value into a local file (ranged parts, bounded memory)."""
        name = self._key(key)
        self._require("read")
        self._parts.view.download(name, Path(path), progress)

    def presign_url(self, key: str, expires: float = 3600.0) -> str:
        """A URL that downloads the key's value without credentials for `expires` seconds
        (at most 7 days, S3's limit). Signed here, no request: the key is not checked.
        UnsupportedOperationError where the backend has no URLs (the in-memory one)."""
        name = self._key(key)
        self._require("read")
        if not 1 <= expires <= MAX_PRESIGN_SECONDS:
            raise ValueError(
                f"expires must be 1 s to 7 days ({MAX_PRESIGN_SECONDS} s), not {expires}"
            )
        return self._parts.objects.presign(name, expires)

    def upload_file(
        self,
        key: str,
        path: str | Path,
        progress: Progress | None = None,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> bool:
        """Store a local file's content under `key` (multipart, bounded memory, quota);
        `if_match` / `if_absent` as for `save`."""
        name, expect = self._key(key), expectation(if_match, if_absent)
        self._require("write")
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"No file to upload for key '{name}': {source} does not exist")
        writer = self._parts.writer
        return self._guarded(
            lambda: writer.put_file(name, source, progress=progress, expect=expect)
        )


def stat_of(item: Listed) -> ObjectStat:
    """The public stat of a listed key."""
    when = None if item.last_modified is None else datetime.fromtimestamp(item.last_modified, UTC)
    return ObjectStat(item.key, item.size, item.etag, when)
