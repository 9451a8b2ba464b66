"""Reads of a key's versions on a versioned bucket: its history, an earlier version's
value, and a read-only local file of it.

A version never changes, so its value is cached by version id (under a name no key can
have, `version_entry`) and served from there without a request, never revalidated and
never touching the key's own entry. The exception is the "null" version (what was written
while versioning was off or suspended): a later write replaces it, so it is always
fetched. A version removed meanwhile (retention, another node) is a KeyNotFoundError
naming that version.
"""

from __future__ import annotations

from itertools import takewhile
from pathlib import Path

from objectstore_s3.errors import UnsupportedOperationError
from objectstore_s3.local.cache import NodeCache, version_entry
from objectstore_s3.local.files import LocalFiles
from objectstore_s3.transport.base import Backend, Progress, VersionInfo

__all__ = ["NULL_VERSION", "VersionReads"]

NULL_VERSION = "null"  # S3's id of what was written while versioning was off


class VersionReads:
    """A key's versions as the bucket lists them, and their values (cached by id)."""

    def __init__(self, cache: NodeCache, files: LocalFiles, backend: Backend) -> None:
        self._cache = cache
        self._files = files
        self._backend = backend
        self._versioned = False  # seen on once: a bucket's versioning is never off again

    def versioned(self) -> bool:
        """Whether the bucket has versions: versioning enabled, or suspended after it was
        (a server without versioning at all counts as off)."""
        if not self._versioned:
            try:
                self._versioned = self._backend.versioning() != "off"
            except UnsupportedOperationError:
                return False
        return self._versioned

    def history(self, key: str) -> list[VersionInfo]:
        """The key's versions and delete markers, newest first; without versioning, its
        current object as version "null" (or nothing if it does not exist)."""
        if not self.versioned():
            info = self._backend.head(key)
            if info is None:
                return []
            return [
                VersionInfo(
                    key, NULL_VERSION, info.size, info.etag, info.last_modified, True, False
                )
            ]
        # Key order: the key itself comes before every longer key it is a prefix of, so
        # the listing stops at the first other key (the rest is never fetched).
        return list(takewhile(lambda item: item.key == key, self._backend.list_versions(key)))

    def read(self, key: str, version_id: str) -> bytes:
        """One version's value: from the cache by id, else fetched (and cached)."""
        name = version_entry(key, version_id)
        immutable = version_id != NULL_VERSION
        if immutable:
            cached = self._cache.get(name)
            if cached is not None:
                return cached.body
        generation = self._cache.generation(name)
        data = self._backend.get(key, version_id=version_id)
        assert data is not None  # no If-None-Match was sent
        if immutable:
            self._cache.fill(name, data.body, data.info.etag, generation, had_entry=False)
        return data.body

    def cached(self, key: str, version_id: str) -> bytes | None:
        """A version's value if this node has it cached (no request)."""
        if version_id == NULL_VERSION:
            return None
        entry = self._cache.get(version_entry(key, version_id))
        return None if entry is None else entry.body

    def file(self, key: str, version_id: str, progress: Progress | None = None) -> Path:
        """A read-only local file of one version, beside the key's own (never synced):
        written from the cache when it has the version, else downloaded in parts."""
        body = self.cached(key, version_id)

        def write(target: Path) -> object:
            if body is not None:
                return target.write_bytes(body)
            return self._backend.download(key, target, progress, version_id=version_id)

        immutable = version_id != NULL_VERSION
        return self._files.keep_version(key, version_id, write, immutable=immutable)
