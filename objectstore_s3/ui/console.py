"""The console's state beside the store: which actions the settings allow, the folder
indexes and the usage it keeps for a few seconds, and what it shows of the node.

Everything here goes through the public `ObjectStore` API. What the page may show of the
settings is chosen field by field (`identity`): no credential, and an endpoint URL without
its user information, ever reaches a page.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from objectstore_s3.errors import ObjectStoreError, StoragePermissionError
from objectstore_s3.lean import PERMISSION_MESSAGES, StorageUsage
from objectstore_s3.store import ObjectStore

from .folders import Listings

__all__ = ["Console", "Figures", "Permissions", "folder_size"]

ACTIONS = ("read", "write", "delete")
UNSAVED_SHOWN = 100  # the node page names at most this many keys with unsaved changes


@dataclass(frozen=True)
class Permissions:
    """What the console offers: the store's permissions settings, less what --read-only
    takes away. The server refuses an action that is not offered."""

    read: bool
    write: bool
    delete: bool

    def require(self, action: str) -> None:
        if not getattr(self, action):
            raise StoragePermissionError(PERMISSION_MESSAGES[action])


@dataclass(frozen=True)
class Figures:
    """A size on disk: bytes and files (counted up to a bound)."""

    bytes: int
    files: int
    complete: bool  # False: the count stopped at its bound


class Console:
    """The store the console shows, and what the console keeps between requests."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        read_only: bool = False,
        listing_ttl: float = 30.0,
        page_size: int = 200,
    ) -> None:
        self.store = store
        granted = store.settings.permissions
        self.permissions = Permissions(
            read=granted.read,
            write=granted.write and not read_only,
            delete=granted.delete and not read_only,
        )
        self.read_only = read_only
        self.page_size = page_size
        self.listings = Listings(store.list_objects, ttl=listing_ttl)
        self._usage = _Timed(store.usage, listing_ttl)
        self.uploads = Path(tempfile.mkdtemp(prefix="objectstore-console-"))  # 0700
        self._refused = threading.local()
        self._previous = store.on_error
        store.on_error = self._on_error  # a refusal reported in backtest/live mode

    @property
    def versions(self) -> bool:
        """Whether this store lists versions (`history`) and restores them."""
        return hasattr(self.store, "history") and hasattr(self.store, "restore")

    def usage(self) -> StorageUsage:
        return self._usage.get()

    def changed(self) -> None:
        """The console changed a key: its indexes and usage are out of date."""
        self.listings.forget()
        self._usage.forget()

    def close(self) -> None:
        shutil.rmtree(self.uploads, ignore_errors=True)

    # -- writes whose refusal is reported (backtest/live modes), not raised ----------------

    def _on_error(self, error: ObjectStoreError) -> None:
        self._refused.error = error  # read back by `upload`, on the same thread
        if self._previous is not None:
            self._previous(error)

    def upload(self, key: str, path: Path) -> None:
        """Store the file under `key`; a refusal the store reports is raised here."""
        self._refused.error = None
        if not self.store.upload_file(key, path):
            error = getattr(self._refused, "error", None)
            raise error if error is not None else ObjectStoreError(f"'{key}' was not saved")

    # -- what the page shows of the settings and the node ------------------------------------

    def identity(self) -> dict[str, str]:
        """Where the store is: no credential, no user information of the endpoint URL."""
        s = self.store.settings
        return {
            "organization": str(s.organization_id),
            "project": str(s.project_id),
            "bucket": s.bucket,
            "prefix": s.prefix or "(none)",
            "endpoint": _without_user(s.endpoint_url),
        }

    def node(self) -> dict[str, Any]:
        """This node as the settings and its folders show it."""
        s = self.store.settings
        local = Path(s.local_root) / str(s.organization_id)
        return {
            "status": self.store.node_status(),
            "unsaved_shown": UNSAVED_SHOWN,
            "cache_dir": str(s.cache_dir),
            "cache_limit": s.cache_size_limit,
            "local_root": str(local),
            "local": folder_size(local),
            "mode": s.mode,
            "write_behind": s.persistence_interval_seconds,
            "revalidate": s.cache_revalidate,
            "quota_enforcement": s.quota_enforcement,
            "transport": s.transport,
        }


def _without_user(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def folder_size(folder: Path, bound: int = 200_000) -> Figures:
    """Bytes and files under a folder (symbolic links not followed), stopping after
    `bound` entries so a huge folder cannot stall a page."""
    total = files = seen = 0
    for root, dirs, names in os.walk(folder):
        seen += len(dirs) + len(names)
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
                files += 1
            except OSError:
                continue  # gone meanwhile
        if seen > bound:
            return Figures(total, files, False)
    return Figures(total, files, True)


class _Timed:
    """A value kept for `ttl` seconds."""

    def __init__(self, make: Callable[[], StorageUsage], ttl: float) -> None:
        self._make = make
        self._ttl = ttl
        self._lock = threading.Lock()
        self._value: tuple[float, StorageUsage] | None = None

    def get(self) -> StorageUsage:
        with self._lock:
            kept = self._value
        if kept is not None and time.monotonic() - kept[0] < self._ttl:
            return kept[1]
        value = self._make()
        with self._lock:
            self._value = (time.monotonic(), value)
        return value

    def forget(self) -> None:
        with self._lock:
            self._value = None
