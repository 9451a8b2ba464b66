"""The two write modes: write-through commits each save and delete before it returns;
write-behind journals them (reserving quota first, so an accepted save is never refused
later) and the writer commits them at `flush()` or every interval."""

from __future__ import annotations

import uuid

from objectstore_s3.errors import LocalPathClashError, StorageLimitExceededError

from .writer import Writer

__all__ = ["WriteBehind", "WriteThrough", "Writer"]


class WriteThrough(Writer):
    """Every save and delete reaches the bucket before it returns."""

    def put(self, key: str, data: bytes) -> None:
        self._write_through(key, data)

    def delete(self, key: str) -> None:
        with self.locked(key):
            base = self._require_existing(key)
            try:
                self.committer.delete(key, base)
            except BaseException:
                # The object is still there (an unanswered DELETE is checked with a
                # HEAD): the local file stays; only the cache entry goes (it may be stale).
                self.cache.invalidate(key)
                raise
            self._after_delete(key)
            self._supersede_pending(key)


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
        try:
            self.journal.record(
                key,
                "put",
                data,
                base=base,
                accepted_server=self.backend.server_time(),
                token=token,
                lease=self.quota.lease_id,
            )
        except BaseException:
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
            base = self._require_existing(key)
            previous = self.journal.get(key)
            self.journal.record(
                key, "delete", base=base, accepted_server=self.backend.server_time()
            )
            if previous is not None:
                self.quota.release(previous.token)
            self._after_delete(key)
