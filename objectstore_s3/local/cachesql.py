"""diskcache as the node cache opens it: a `Disk` that never pickles, an opening that
gives up on a busy lock after `lock_timeout`, and the database's epoch (cachemarks.py),
kept in a table of its own because diskcache evicts its own rows."""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import diskcache

__all__ = ["RawDisk", "UnsafeEntry", "new_epoch", "open_database", "stored_epoch"]


class UnsafeEntry(Exception):
    """An entry that would need unpickling: refused."""


class RawDisk(diskcache.Disk):  # type: ignore[misc]
    """A diskcache Disk that stores str keys and bytes values raw and never unpickles."""

    def put(self, key: Any) -> tuple[Any, bool]:
        if not isinstance(key, str):
            raise TypeError("cache keys are str")
        return super().put(key)  # type: ignore[no-any-return]

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise UnsafeEntry("refusing to unpickle a cache key")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        if not read and not isinstance(value, bytes | int):
            raise TypeError("cache values are bytes")
        return super().store(value, read, key)

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
        if mode == diskcache.core.MODE_PICKLE:
            raise UnsafeEntry("refusing to unpickle a cache value")
        return super().fetch(mode, filename, value, read)


class _Database(diskcache.Cache):  # type: ignore[misc]
    """diskcache's Cache, whose opening gives up on a busy lock after `lock_timeout` (its
    own retry of the settings it writes at every open waits up to 60 s)."""

    def __init__(self, directory: str, lock_timeout: float, **settings: Any) -> None:
        self._open_deadline = time.monotonic() + lock_timeout
        super().__init__(directory, timeout=lock_timeout, disk=RawDisk, **settings)

    @property
    def _sql_retry(self) -> Callable[..., Any]:
        sql, deadline = self._sql, self._open_deadline

        def execute(statement: str, *args: Any, **kwargs: Any) -> Any:
            while True:
                try:
                    return sql(statement, *args, **kwargs)
                except sqlite3.OperationalError as exc:
                    if str(exc) != "database is locked" or time.monotonic() >= deadline:
                        raise
                    time.sleep(0.001)

        return execute


def open_database(folder: str, size_limit: int, lock_timeout: float) -> diskcache.Cache:
    """The node's database, made if missing."""
    return _Database(
        folder,
        lock_timeout,
        size_limit=size_limit,
        eviction_policy="least-recently-stored",
        # Values up to 256 KiB stay in the database: a cached read is one row read,
        # no value file to open (SQLite reads small blobs faster than files).
        disk_min_file_size=256 * 1024,
        # diskcache culls on every set (a search for expired entries, which this
        # cache never has, and a volume check): ~15% of a save's CPU. Entries are
        # culled after each size_limit/64 stored instead.
        cull_limit=0,
    )


def stored_epoch(folder: str, timeout: float) -> int | None:
    """The database's epoch, kept in a table of its own (diskcache evicts its rows)."""
    with contextlib.closing(_connect_sqlite(folder, timeout)) as con:
        try:
            row = con.execute("SELECT epoch FROM ObjectStoreEpoch").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return None
    return row[0] if row is not None and isinstance(row[0], int) else None


def new_epoch(folder: str, timeout: float) -> int:
    epoch = secrets.randbits(62)
    with contextlib.closing(_connect_sqlite(folder, timeout)) as con:
        con.execute("BEGIN IMMEDIATE")
        con.execute("CREATE TABLE IF NOT EXISTS ObjectStoreEpoch (epoch INTEGER NOT NULL)")
        con.execute("DELETE FROM ObjectStoreEpoch")
        con.execute("INSERT INTO ObjectStoreEpoch VALUES (?)", (epoch,))
        con.execute("COMMIT")
    return epoch


def _connect_sqlite(folder: str, timeout: float) -> sqlite3.Connection:
    return sqlite3.connect(os.path.join(folder, "cache.db"), timeout=timeout, isolation_level=None)
