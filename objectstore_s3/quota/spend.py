"""What a write reports to the quota, and the refusals at a limit. Pure: no I/O.

The code inside `Quota.transaction` tells a `Spend` what its write did (an exact effect,
an ambiguous one, or a lost answer); `Quota` turns that into changes to settle. The
refusals are the errors a save gets at a limit: LEAN reports sizes in MB.
"""

from __future__ import annotations

from dataclasses import dataclass

from objectstore_s3.errors import StorageLimitExceededError

__all__ = ["MB", "Spend", "Usage", "bytes_refused", "files_refused"]

MB = 1024 * 1024


def _mb(size: int) -> str:
    """LEAN reports sizes in MB; small figures also get their exact bytes."""
    return f"{size / MB:.2f} MB" if size >= MB else f"{size / MB:.2f} MB ({size} bytes)"


@dataclass(frozen=True)
class Usage:
    bytes: int
    files: int


@dataclass
class Spend:
    """What one write did to usage, told by the code inside `Quota.transaction`."""

    files: int = 0
    bytes: int = 0
    done: bool = False
    ambiguous: bool = False
    pending: bool = False  # may still be applied later (its answer was lost)
    bounded: bool = False  # the effect is an upper bound (a suspended versioned bucket)
    repeat_files: int = 0  # increases an earlier attempt, still in flight, may yet make
    repeat_bytes: int = 0

    def may_repeat(self, files: int, size: int) -> None:
        """Besides its effect, a timed-out attempt of the write may still land later and
        increase usage by at most (files, size): counted as a maybe."""
        self.repeat_files, self.repeat_bytes = files, size

    def effect(self, files: int, size: int) -> None:
        """The write happened and changed usage by exactly (files, size)."""
        self.files, self.bytes, self.done = files, size, True

    def at_most(self, files: int, size: int) -> None:
        """The write happened and changed usage by at most (files, size): on a bucket whose
        versioning is suspended, a write replaces the key's "null" version, whose size is
        not known. Counted whole (never an under-count) and marked drift for a recount."""
        self.effect(files, size)
        self.bounded = True

    def unknown(self, files: int, size: int) -> None:
        """The write's effect is decided but not known (a create or an overwrite, a delete
        by us or by another): only the increase is counted, until a recount."""
        self.files, self.bytes, self.done, self.ambiguous = files, size, True, True

    def unanswered(self, files: int, size: int) -> None:
        """The write was sent and its answer lost: it may have happened, or happen yet (a
        slow server). Its increase counts until its horizon, recounts included."""
        self.unknown(files, size)
        self.pending = True


def files_refused(key: str, limit: int, stored: int, reserved: int) -> StorageLimitExceededError:
    return StorageLimitExceededError(
        f"You have reached the ObjectStore limit for files it can save: {limit} ({stored} "
        f"stored, {reserved} reserved by saves in progress), unable to save the new file: "
        f"'{key}'. Delete keys or raise storage_file_count."
    )


def bytes_refused(
    key: str, size: int, limit: int, used: int, reserved: int
) -> StorageLimitExceededError:
    return StorageLimitExceededError(
        f"Unable to save '{key}' ({_mb(size)}): it would exceed the storage capacity limit "
        f"of {_mb(limit)} ({_mb(used)} used, {_mb(reserved)} reserved by saves in progress). "
        "Delete keys or raise storage_limit_bytes."
    )
