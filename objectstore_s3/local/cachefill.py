"""Cache fills written behind the read: the caller gets its value without waiting for the
cache's database write (about a tenth of an uncached read).

A pending fill is served from memory to this process's reads, but only after the same
check a fill makes before it lands: the key's generation in the shared cache database is
still the one the read took before its request. A write by any process on the node bumps
that generation before it returns, so a pending fill can never show a value older than a
finished write. Writes of this process also drop the key's pending fill (a cleared cache
drops them all), and the worker lands a fill only while it is still the pending one.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Fill", "PendingFills"]

log = logging.getLogger("objectstore_s3")


@dataclass(frozen=True)
class Fill:
    body: bytes
    etag: str
    generation: int
    validated_at: float


class PendingFills:
    """Fills waiting for the worker thread, at most `max_bytes` of them."""

    def __init__(self, land: Callable[[str, Fill], None], max_bytes: int) -> None:
        self._land = land
        self._max_bytes = max_bytes
        self._pending: dict[str, Fill] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._worker: threading.Thread | None = None
        self._closed = False
        self._pid = os.getpid()

    def add(self, key: str, fill: Fill) -> bool:
        """Queue a fill; False (the caller fills at once) when closed or full."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the worker stayed behind
                self._pid, self._worker = os.getpid(), None
                self._pending.clear()
                self._bytes = 0
            previous = self._pending.get(key)
            held = self._bytes - (len(previous.body) if previous else 0)
            if self._closed or held + len(fill.body) > self._max_bytes:
                self._remove(key, previous)  # the caller lands the newer one at once
                return False
            self._pending[key] = fill
            self._bytes = held + len(fill.body)
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._run, name="objectstore-cache-fill", daemon=True
                )
                self._worker.start()
            self._changed.notify_all()
            return True

    def get(self, key: str) -> Fill | None:
        with self._lock:
            return self._pending.get(key)

    def is_pending(self, key: str, fill: Fill) -> bool:
        with self._lock:
            return self._pending.get(key) is fill

    def discard(self, key: str) -> None:
        with self._lock:
            self._remove(key, self._pending.get(key))

    def discard_all(self) -> None:
        with self._lock:
            self._pending.clear()
            self._bytes = 0
            self._changed.notify_all()

    def settle(self) -> None:
        """Wait until every queued fill has landed (or was dropped)."""
        with self._lock:
            self._changed.wait_for(lambda: not self._pending or self._worker is None)

    def close(self) -> None:
        """Land what is queued, then stop the worker."""
        with self._lock:
            self._closed = True
            self._changed.notify_all()
            worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join()

    def _remove(self, key: str, fill: Fill | None) -> None:
        if fill is not None and self._pending.get(key) is fill:
            del self._pending[key]
            self._bytes -= len(fill.body)
            self._changed.notify_all()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._changed.wait_for(lambda: bool(self._pending) or self._closed)
                if not self._pending:
                    self._worker = None
                    self._changed.notify_all()
                    return
                key, fill = next(iter(self._pending.items()))
            try:
                self._land(key, fill)  # checks is_pending under the cache's own lock
            except Exception:  # a fill is optional: never let one stop the worker
                log.exception("Could not fill the node cache for '%s'", key)
            with self._lock:
                self._remove(key, fill)
