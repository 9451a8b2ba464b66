"""The background flusher of a store: every interval, upload pending work and the local
files that stopped changing, and renew the quota lease; with capped exponential backoff
while the bucket fails. After a crash it also replays a dead process's journal."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from objectstore_s3.errors import ObjectStoreError

__all__ = ["Flusher"]

log = logging.getLogger("objectstore_s3")


class Flusher:
    """The background thread: every interval, upload pending work and settled files,
    with capped exponential backoff while the bucket fails."""

    def __init__(
        self,
        step: Callable[[bool], None],
        report: Callable[[ObjectStoreError], None],
        interval: float,
        *,
        replay_only: bool,
    ) -> None:
        # step(replay_only): one round of uploads (the parts it needs are built on first
        # use, in this thread: no I/O at construction).
        self._step = step
        self._report_to = report
        self._interval = interval
        self._replay_only = replay_only
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="objectstore-flusher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _report(self, error: ObjectStoreError) -> None:
        try:
            self._report_to(error)
        except Exception:
            log.error("%s", error)

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def join(self) -> None:
        """Wait until the thread has ended (a replay-only flusher ends after its replay)."""
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        failures = 0
        delay = 0.0 if self._replay_only else self._interval
        while not self._stop.wait(delay):
            try:
                self._step(self._replay_only)
            except Exception as exc:  # the thread must survive anything; the journal keeps it
                failures += 1
                if failures == 1:
                    self._report(
                        exc
                        if isinstance(exc, ObjectStoreError)
                        else ObjectStoreError(
                            f"Background flush failed ({type(exc).__name__}: {exc}); pending "
                            "work stays journaled and is retried."
                        )
                    )
                base = self._interval if self._interval > 0 else 1.0
                delay = min(base * 2**failures, 60.0) * random.uniform(0.5, 1.0)  # noqa: S311
                continue
            failures = 0
            if self._replay_only:
                return
            delay = self._interval
