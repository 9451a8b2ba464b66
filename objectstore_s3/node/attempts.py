"""The vocabulary of one write: what it expects (`plan`, `base_of`), one attempt and
what it counts if it lands (`Attempt`), how pending work is judged (`Pending`,
`written_after`, `Superseded`), and the errors a user's own precondition raises. Pure:
no I/O (commit.py sends).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from objectstore_s3.errors import (
    OutcomeUnknownError,
    PreconditionFailedError,
    ServerCapabilityError,
)
from objectstore_s3.quota import Spend
from objectstore_s3.transport.base import Base, ObjectInfo

__all__ = [
    "Attempt",
    "Pending",
    "Superseded",
    "ambiguous",
    "base_of",
    "count_repeats",
    "plan",
    "refused",
    "removed",
    "unsafe",
    "written_after",
]


@dataclass(frozen=True)
class Superseded:
    """A pending write that lost to a newer object, or to a delete (`current` None),
    made after it was accepted."""

    key: str
    current: ObjectInfo | None


def plan(base: Base, size: int, versioning: str = "off") -> tuple[dict[str, str], int, int]:
    """(precondition, files delta, bytes delta) of writing `size` bytes over `base`. On a
    bucket that keeps versions the object replaced stays (noncurrent): all of `size` is new
    (suspended: at most, as the "null" version it may replace is of unknown size)."""
    if base.known and base.etag is not None:
        replaced = base.size if versioning == "off" else 0
        return {"if_match": base.etag}, 0, size - replaced
    return {"if_none_match": "*"}, 1, size


def removed(base: Base, versioning: str) -> int:
    """The bytes a delete of `base` frees: none where versions are kept (the object stays,
    noncurrent, under a delete marker; suspended: at most its "null" version, counted as
    none, spend.at_most)."""
    return base.size if versioning == "off" else 0


def refused(key: str, base: Base, current: ObjectInfo | None) -> PreconditionFailedError:
    """A user's precondition that did not hold: name the key and what it holds now."""
    wanted = "not to exist" if base.etag is None else f"to have ETag {base.etag}"
    now = "it does not exist" if current is None else f"its current ETag is {current.etag}"
    return PreconditionFailedError(
        f"Not saved: '{key}' was expected {wanted}, but {now} (another writer changed it). "
        "Read it again and retry with the current ETag, or use store.update(key, fn).",
        key=key,
        current_etag=None if current is None else current.etag,
    )


def ambiguous(key: str) -> OutcomeUnknownError:
    return OutcomeUnknownError(
        f"A conditional save of '{key}' got no answer, and '{key}' now holds the value it "
        "sent: this call or another writer with the same value applied it. Read the key "
        "to decide before saving again."
    )


def folder_refused(key: str) -> ServerCapabilityError:
    """SeaweedFS keeps a folder entry for the keys under 'key/' and answers a create of
    'key' only-if-absent with 412 although no object 'key' exists."""
    return ServerCapabilityError(
        f"Cannot create '{key}' only if absent: the S3 server counts the keys under "
        f"'{key}/' as an object named '{key}' and refuses the condition. Save '{key}' once "
        "without if_absent= (later updates compare ETags), or use a key that is not also "
        "a folder."
    )


def unsafe(key: str) -> ServerCapabilityError:
    return ServerCapabilityError(
        f"Cannot save '{key}' conditionally: the S3 server ignores If-Match and "
        "If-None-Match, so a compare-and-swap would not be safe. Use a server that "
        "honours conditional writes (AWS S3, MinIO, SeaweedFS)."
    )


def base_of(info: ObjectInfo | None) -> Base:
    return Base.absent() if info is None else Base(info.etag, info.size, True)


def written_after(info: ObjectInfo, accepted: tuple[float, float]) -> bool | None:
    """Whether the object was surely written after the acceptance window (True), surely
    before it (False), or cannot be told (None). S3 keeps Last-Modified in whole seconds."""
    if info.last_modified is None:
        return None
    resolution = 1.0 if float(info.last_modified).is_integer() else 1e-6
    if info.last_modified > accepted[1]:
        return True
    if info.last_modified + resolution < accepted[0]:
        return False
    return None


@dataclass(frozen=True)
class Pending:
    """What a pending write is judged by: when it was accepted (server-clock bounds), the
    lease of the store that accepted it, and the tombstones its batch listed (or None)."""

    accepted: tuple[float, float]
    lease: str | None = None
    recent: Mapping[str, ObjectInfo] | None = None


@dataclass(frozen=True)
class Attempt:
    """One send of a write: its precondition and what it counts if it lands."""

    condition: dict[str, str]
    files: int
    delta: int
    blind: bool  # sent without a precondition although the server honours them
    conditional_put: bool
    bounded: bool = False  # the effect is an upper bound (versioning suspended)

    @staticmethod
    def over(
        base: Base,
        size: int,
        conditional_put: bool,
        refused_as_expected: int,
        versioning: str = "off",
    ) -> Attempt:
        condition, files, delta = plan(base, size, versioning)
        # A server that refuses a precondition its own HEAD says holds (SeaweedFS:
        # `If-None-Match: *` on `a` while `a/b` exists) gets, the second time, an
        # unconditional write, counted as a maybe (its increase only).
        blind = not conditional_put or refused_as_expected >= 2
        if blind:
            condition = {}
            if conditional_put:
                # Unconditional, so it may create the key (deleted since the HEAD): it
                # reserves and counts a new object's increase.
                files, delta = 1, size
        return Attempt(condition, files, delta, blind, conditional_put, versioning == "suspended")

    def count(self, spend: Spend, *, answered: bool) -> None:
        """Count a write that landed: exactly as planned, unless it went without a
        precondition (then as a create or not: drift for the next recount). Without
        conditional writes at all, an answered write counts as planned (best effort)."""
        unknown = self.blind and (self.conditional_put or not answered)
        if unknown:
            spend.unknown(self.files, self.delta)
        elif self.bounded:
            spend.at_most(self.files, self.delta)
        else:
            spend.effect(self.files, self.delta)


def count_repeats(spend: Spend, condition: dict[str, str], size: int, count: int) -> None:
    """Attempts that timed out may land yet, each once: without If-Match (If-None-Match
    after a delete, or no precondition) each can make a new object."""
    if count > 0:
        spend.may_repeat(count * ("if_match" not in condition), count * size)
