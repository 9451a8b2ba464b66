"""Applying one write to the bucket so that its effect is known exactly.

Every object write carries a precondition: a key the node believes absent is written with
`If-None-Match: *` (+1 file, +size), one whose ETag it knows with `If-Match` (+size - old
size); a delete with `If-Match`. A 412 means the node's belief was stale: a HEAD gives
the truth and the write is retried against it. So the quota counts what each write really
did, whatever other nodes do meanwhile, and a write never clobbers what it did not expect.

Pending write-behind work also carries the server time it was accepted at: if the object
changed since, the newer object wins and the pending write is dropped and reported (a
node that crashed and replays later never overwrites what others wrote meanwhile). A key
deleted meanwhile is judged by the delete's tombstone (tombstones.py), which every delete
made here leaves (on a bucket that keeps versions, by its delete marker). Writes there
count what versions keep (attempts.py `plan`), and a save prunes what retention says.
An answer that never came is resolved with a HEAD before anything is counted.

A user's own precondition (`if_match`, `if_absent`: `strict`) is never retried over
another object: its 412 is the user's answer. What one attempt plans and counts is in
attempts.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from objectstore_s3.errors import (
    ObjectStoreError,
    OutcomeUnknownError,
    PreconditionFailedError,
    StorageUnavailableError,
)
from objectstore_s3.quota import Quota, Retention, Spend
from objectstore_s3.transport.base import Backend, Base, ObjectInfo, Progress, content_etag

from .attempts import (
    Attempt,
    Pending,
    Superseded,
    ambiguous,
    base_of,
    count_repeats,
    folder_refused,
    refused,
    removed,
    unsafe,
    written_after,
)
from .tombstones import Tombstones

__all__ = ["Committer"]

log = logging.getLogger("objectstore_s3")

_ROUNDS = 8  # precondition retries before giving up on a key that keeps changing
_OPTIMISTIC_BYTES = 1024 * 1024  # up to this, guess "absent" rather than HEAD first


class Committer:
    """Conditional writes with exact quota accounting, for both write modes."""

    def __init__(
        self,
        backend: Backend,
        quota: Quota,
        *,
        conditional: Callable[[], tuple[bool, bool]],
        records: Backend | None = None,
        retention: Retention | None = None,
    ) -> None:
        self._backend = backend
        self._quota = quota
        self._versioning = quota.book.versioning  # how writes count (quota/versions.py)
        self._retention = retention or Retention()  # what a save prunes (versioned bucket)
        self.tombstones = Tombstones(records, backend, self._versioning)  # or delete markers
        # (puts honour preconditions, deletes honour If-Match), probed on first use.
        self._conditional = conditional

    def put(
        self,
        key: str,
        data: bytes,
        base: Base,
        *,
        pending: Pending | None = None,
        held: str | None = None,
        strict: bool = False,
    ) -> ObjectInfo | Superseded:
        """Write `data`; a `Superseded` if pending work lost to a newer object or delete.
        `strict`: the user's own precondition (`if_match` / `if_absent`), never retried
        over another object: a 412 raises PreconditionFailedError naming the current ETag."""

        expected = content_etag(data)  # once: the backend needs it too (lost answers)

        def send(condition: dict[str, str]) -> ObjectInfo:
            return self._backend.put(key, data, etag=expected, **condition)

        # A create: the key may have been created and deleted since it was accepted.
        create = pending if base.etag is None else None
        if create and self.tombstones.deleted_after(key, create, expected_object=False):
            return Superseded(key, None)
        yields = None if pending is None else self._newer_than(key, pending)
        return self.write(
            key, len(data), base, send, yields=yields, held=held, expected=expected, strict=strict
        )

    def _newer_than(self, key: str, pending: Pending) -> Callable[[ObjectInfo | None], bool]:
        """Pending work gives way to an object written after it was accepted, or maybe so;
        and, where the object it expected is gone, to a delete made after it was."""

        def yields(current: ObjectInfo | None) -> bool:
            if current is not None:
                return written_after(current, pending.accepted) is not False
            return self.tombstones.deleted_after(key, pending, expected_object=True)

        return yields

    def put_file(
        self,
        key: str,
        path: Path,
        base: Base,
        *,
        unchanged: Callable[[], bool],
        size: int,
        keep_rival: bool,
        progress: Progress | None = None,
        strict: bool = False,
    ) -> ObjectInfo | Superseded:
        """Upload a local file. `keep_rival` (automatic syncs): an object changed since
        the file's last sync is never overwritten (a Superseded). `strict`: see `put`."""

        def send(condition: dict[str, str]) -> ObjectInfo:
            return self._backend.upload(
                key, path, unchanged=unchanged, progress=progress, **condition
            )

        yields = (lambda current: True) if keep_rival else None
        return self.write(key, size, base, send, yields=yields, held=None, strict=strict)

    def write(
        self,
        key: str,
        size: int,
        base: Base,
        send: Callable[[dict[str, str]], ObjectInfo],
        *,
        yields: Callable[[ObjectInfo | None], bool] | None,
        held: str | None,
        expected: str | None = None,
        strict: bool = False,
    ) -> ObjectInfo | Superseded:
        """Send with the precondition `base` implies (`expected`: the ETag the object will
        have, when known); after a 412, `yields(current)` says whether to give way to the
        object found (else the write is retried over it). `strict`: see `put`."""
        conditional_put, _ = self._conditional()
        if strict and not conditional_put:
            raise unsafe(key)
        refused_as_expected = unanswered = 0
        send, answered = _answered(send)
        for _ in range(_ROUNDS):
            if not conditional_put or (not base.known and size > _OPTIMISTIC_BYTES):
                base = base_of(self._backend.head(key))
            versioning = self._versioning.state
            attempt = Attempt.over(base, size, conditional_put, refused_as_expected, versioning)
            outcome = self._send(key, size, attempt, send, held, strict=strict)
            if isinstance(outcome, ObjectInfo):
                self._retention.after_save(self._backend, self._quota, outcome, answered)
                return outcome
            if outcome is not None:
                unanswered += 1
                if unanswered >= 3:
                    raise outcome  # the server keeps not answering: report it
            # 412: this node's belief was stale (or the server refused for its own reasons).
            current = self._backend.head(key)
            if strict:
                # A user's precondition: an object with our content may be another
                # writer's equal value (two updates of a counter from one value), so
                # only an attempt of ours left unanswered makes it maybe ours.
                if base.etag is None and current is None and self._is_folder(key):
                    raise folder_refused(key)
                mine = unanswered and current is not None and current.etag == expected
                raise ambiguous(key) if mine else refused(key, base, current)
            if current is not None and expected is not None and current.etag == expected:
                # Our own earlier attempt (its answer lost in a previous flush) is there,
                # and was counted (its increase) when it was sent.
                return current
            if base_of(current) == base:
                refused_as_expected += outcome is None
                continue
            if yields is not None and yields(current):
                return Superseded(key, current)
            base = base_of(current)
        raise StorageUnavailableError(
            f"'{key}' kept changing under {_ROUNDS} attempts to write it (other writers); "
            "try again."
        )

    def _is_folder(self, key: str) -> bool:
        """Whether keys exist under 'key/' (see `folder_refused`)."""
        return next(iter(self._backend.list(key + "/")), None) is not None

    def _send(
        self,
        key: str,
        size: int,
        attempt: Attempt,
        send: Callable[[dict[str, str]], ObjectInfo],
        held: str | None,
        *,
        strict: bool = False,
    ) -> ObjectInfo | OutcomeUnknownError | None:
        """One attempt inside its quota transaction: the object written, the lost answer
        of an attempt not found written (its increase counted), or None after a 412.
        `strict`: a lost answer found "as sent" is still in doubt (see `_write`)."""
        with self._quota.transaction(key, attempt.files, attempt.delta, held=held) as spend:
            try:
                info = send(attempt.condition)
            except PreconditionFailedError:
                return None
            except OutcomeUnknownError as exc:
                found = self._resolve_lost(key, size, attempt, spend, exc)
                if strict and isinstance(found, ObjectInfo):
                    raise ambiguous(key) from exc
                return found
            count_repeats(spend, attempt.condition, size, info.repeats)
            attempt.count(spend, answered=True)
            return info

    def _resolve_lost(
        self, key: str, size: int, attempt: Attempt, spend: Spend, exc: OutcomeUnknownError
    ) -> ObjectInfo | OutcomeUnknownError:
        """An attempt whose answer was lost: a HEAD tells whether it landed as sent."""
        try:
            current = self._backend.head(key)
        except ObjectStoreError:
            spend.unanswered(attempt.files, attempt.delta)  # cannot even look: a maybe
            count_repeats(spend, attempt.condition, size, exc.lost - 1)
            raise
        if current is not None and current.etag == exc.expected_etag:
            attempt.count(spend, answered=False)  # it landed
            count_repeats(spend, attempt.condition, size, exc.lost - 1)
            return current
        # Not there as sent. It may have landed and been replaced, or land still (a slow
        # server, a request stuck in a queue: the retry then meets it). Count its increase
        # (never a decrease), then write again.
        spend.unanswered(attempt.files, attempt.delta)
        count_repeats(spend, attempt.condition, size, exc.lost - 1)
        return exc

    def delete(
        self, key: str, base: Base, *, accepted: tuple[float, float] | None = None
    ) -> bool | Superseded:
        """Delete the object `base` describes; False if it was already gone. A delete
        made leaves its tombstone (see tombstones.py)."""
        outcome = self._delete(key, base, accepted)
        if outcome is True:
            self.tombstones.write(key, self._quota.lease_id)  # versioned: its marker is one
        return outcome

    def _delete(
        self, key: str, base: Base, accepted: tuple[float, float] | None
    ) -> bool | Superseded:
        _, conditional_delete = self._conditional()
        for _ in range(_ROUNDS):
            if base.known and base.etag is None:
                # Pending work that found no object: one made since is newer (the model
                # test's get_file_path, delete, another node's update, flush).
                current = self._backend.head(key) if accepted is not None else None
                return False if current is None else Superseded(key, current)
            if not base.known or not conditional_delete:
                current = self._backend.head(key)
                if current is None:
                    return False
                expected = base.known and current.etag == base.etag
                rival = accepted is not None and written_after(current, accepted) is not False
                if rival and not expected:
                    return Superseded(key, current)
                base = base_of(current)
            state = self._versioning.state  # once: an answer between two reads would differ
            freed = removed(base, state)  # a delete marker frees no bytes
            with self._quota.transaction(key) as spend:
                count = spend.at_most if state == "suspended" else spend.effect
                try:
                    self._backend.delete(key, if_match=base.etag if conditional_delete else None)
                except PreconditionFailedError:
                    pass
                except OutcomeUnknownError:
                    # Unanswered (a timeout, a reset, a 500), or refused after an attempt
                    # that may have landed: only a look tells whether the object is gone.
                    if self._backend.head(key) is not None:
                        raise  # still there (ours or a newer one): the delete failed
                    # Gone, but by whom cannot be told: count nothing (an over-count,
                    # repaired by the next recount) rather than twice.
                    spend.unknown(-1, -freed)
                    return True
                except BaseException as exc:
                    if not isinstance(exc, ObjectStoreError):
                        # An interrupt (or a bug) after the DELETE may have been sent: it
                        # may land, so its effect is unknown; a recount settles it.
                        spend.unknown(-1, -freed)
                    raise
                else:
                    count(-1, -freed)
                    return True
            current = self._backend.head(key)
            if current is None:
                return False  # someone else deleted it: they count it
            if accepted is not None and written_after(current, accepted) is not False:
                return Superseded(key, current)
            base = base_of(current)
        raise ObjectStoreError(f"'{key}' kept changing under {_ROUNDS} attempts to delete it")


def _answered(
    send: Callable[[dict[str, str]], ObjectInfo],
) -> tuple[Callable[[dict[str, str]], ObjectInfo], list[str]]:
    """`send`, recording the version ids its answers gave (a versioned bucket)."""
    answered: list[str] = []

    def recorded(condition: dict[str, str]) -> ObjectInfo:
        info = send(condition)
        if info.version_id is not None:
            answered.append(info.version_id)
        return info

    return recorded, answered
