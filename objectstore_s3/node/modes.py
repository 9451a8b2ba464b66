"""The two write modes: write-through commits each save and delete before it returns;
write-behind journals them (reserving quota first, so an accepted save is never refused
later) and the writer commits them at `flush()` or every interval."""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from objectstore_s3.errors import KeyNotFoundError, LocalPathClashError, StorageLimitExceededError
from objectstore_s3.transport.base import Base

from .view import NodeView
from .writer import Writer

__all__ = ["WriteBehind", "WriteThrough", "Writer"]


class WriteThrough(Writer):
    """Every save and delete reaches the bucket before it returns."""

    def put(self, key: str, data: bytes) -> None:
        self._write_through(key, data)

    def delete(self, key: str) -> None:
        with self.locked(key):
            base = _require_existing(self.view, key)
            try:
                self.committer.delete(key, base)
            except BaseException:
                # The object is still there (an unanswered DELETE is checked with a
                # HEAD): the local file stays; only the cache entry goes (it may be stale).
                self.cache.invalidate(key)
                raise
            self._after_delete(key)
            self.supersede_pending(key)


class WriteBehind(Writer):
    """Saves and deletes are journaled and reach the bucket at flush or every interval."""

    def put(self, key: str, data: bytes) -> None:
        with self.accepting(key):
            if self._accept(key, data):
                return
        # At the limit, a key this node knows to exist is written through: its effect is
        # then exact, and nothing pending can be refused later.
        self._write_through(key, data)

    def _accept(self, key: str, data: bytes) -> bool:
        """Journal the save, holding room for it; False: write it through instead."""
        base = self.view.base(key)
        previous = self.journal.get(key)
        token = uuid.uuid4().hex
        try:
            # The upload may find the key gone (deleted elsewhere meanwhile) and create
            # it, so a pending save holds room for a new object of its size.
            self.quota.keep(token, key, 1, len(data), replaces=previous.token if previous else None)
        except StorageLimitExceededError:
            if base.etag is None:
                raise
            return False
        accepted_server = self.backend.server_time()
        try:
            # Whole or not at all: a signal (Ctrl-C) waits until the record and its index
            # entry are both written, so the save is journaled or its hold returned.
            with _signals_deferred():
                self.journal.record(
                    key,
                    "put",
                    data,
                    base=base,
                    accepted_server=accepted_server,
                    token=token,
                    lease=self.quota.lease_id,
                )
        except BaseException:
            entry = self.journal.get(key)
            if entry is None or entry.token != token:
                self.quota.release(token)
            raise
        if self.states.is_registered(key):
            try:
                self.files.write(key, data, None)  # what the bucket holds once uploaded
            except LocalPathClashError:
                self.states.unregister(key)
        return True

    def delete(self, key: str) -> None:
        with self.accepting(key):
            base = _require_existing(self.view, key)
            previous = self.journal.get(key)
            accepted_server = self.backend.server_time()
            with _signals_deferred():
                self.journal.record(key, "delete", base=base, accepted_server=accepted_server)
                if previous is not None:
                    self.quota.release(previous.token)
            self._after_delete(key)


def _require_existing(view: NodeView, key: str) -> Base:
    """What a delete starts from; KeyNotFoundError if this node sees no such key."""
    exists, base = view.presence(key)
    if not exists:
        raise KeyNotFoundError(
            key,
            f"The key '{key}' does not exist in the Object Store. Please use "
            "ObjectStore.ContainsKey(key) to check if an object exists before deleting.",
        )
    return base


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold back the Python handlers of signals (SIGINT's KeyboardInterrupt, a handler
    that raises) until the block ends, then run them. Handlers run only in the main
    thread, so elsewhere there is nothing to hold back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, FrameType | None]] = []
    held: dict[int, Callable[[int, FrameType | None], Any]] = {}

    def note(signum: int, frame: FrameType | None) -> None:
        caught.append((signum, frame))

    for signum in _HANDLED:
        handler = signal.getsignal(signum)
        if callable(handler):
            held[signum] = handler
            signal.signal(signum, note)
    try:
        yield
    finally:
        for signum, handler in held.items():
            signal.signal(signum, handler)
        for signum, frame in caught:
            held[signum](signum, frame)


# The signals a Python program commonly handles (Ctrl-C, termination, hang-up, alarms).
_HANDLED = [
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGALRM", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
]
