"""Per-key locks of one process's writer: commits of a key are serialized, and a short
lock orders a write-behind accept against the bookkeeping after a commit.

Keys share 256 lock stripes (a lock per key would grow without bound). Each stripe also
counts the writes that start and end under it, so that a value read between two equal
counts is known to be current (read-ahead uses this to drop values a write overtook).
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["KeyLocks"]

_STRIPES = 256


class KeyLocks:
    """The locks and write counts of one writer."""

    def __init__(self) -> None:
        self._stripes = [threading.RLock() for _ in range(_STRIPES)]
        self._accept_stripes = [threading.RLock() for _ in range(_STRIPES)]
        self._writes = [0] * _STRIPES

    @staticmethod
    def _stripe(key: str) -> int:
        return zlib.crc32(key.encode()) % _STRIPES

    def written(self, key: str) -> int:
        """A count that changes when this process starts or ends a write of the key (or of
        a key sharing its lock): a value read between two equal counts is current."""
        return self._writes[self._stripe(key)]

    @contextmanager
    def _counted(self, locks: list[threading.RLock], key: str) -> Iterator[None]:
        stripe = self._stripe(key)
        with locks[stripe]:
            self._writes[stripe] += 1
            try:
                yield
            finally:
                self._writes[stripe] += 1

    def locked(self, key: str) -> contextlib.AbstractContextManager[None]:
        """This process's lock on committing one key (held across the request)."""
        return self._counted(self._stripes, key)

    def accepting(self, key: str) -> contextlib.AbstractContextManager[None]:
        """A short lock on one key's node state: a write-behind accept (which reads the
        key's base and journals it) and the bookkeeping after a commit never interleave,
        so a save accepted during an upload expects that upload's object."""
        return self._counted(self._accept_stripes, key)
