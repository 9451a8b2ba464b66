"""A lease's books: what every process spending one lease shares, and where they keep it.

A node's processes (a live algorithm, a notebook beside it, a pool of workers) spend one
lease in the organization's ledger together, so the ledger holds one lease per node, not
per process: its size, its renewals and their lost races grow with the nodes only. The
`Books` are that lease's state (its id, the account of allowance, flight, holds and
unsettled changes, the sequence numbers of those changes) and the processes that share
it (`members`, each with what it has in flight). A `Shelf` keeps them: `ProcessShelf` in
memory (one process; a simulation's actors), `NodeShelf` (nodeshelf.py) in a file of the
node's local state under a file lock. The codec here is pure.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from .account import LEASE_SECONDS, Account, Delta

__all__ = ["Books", "BooksDamagedError", "ProcessShelf", "Shelf"]

_WINDOW = 10.0


class BooksDamagedError(ValueError):
    """The books do not parse: a torn write (the machine crashed), or not ours."""


@dataclass
class Books:
    """The state of one lease, shared by the processes that spend it."""

    lease_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    account: Account = field(default_factory=Account)
    seq: int = 0  # the last Delta.seq given out
    sealed: int = 0  # deltas up to this seq were sent in a ledger update: never grown
    # What a release whose answer was lost would leave: installed if the ledger later
    # shows the lease gone (the release landed after it was looked for).
    released: Account | None = None
    # Where in its lease's life the node renews it: around half-life, at a point of its
    # own, so nodes started together (a job array) do not all come back to the ledger in
    # the same instant, lease after lease, and lose races.
    renew_at: float = field(
        default_factory=lambda: LEASE_SECONDS * random.uniform(0.35, 0.65)  # noqa: S311
    )
    grace: float = 0.0  # the largest grace a member claimed: the lease's
    # member -> [files, bytes] it has in flight: a member that died mid-write leaves them,
    # and they become a lost answer (a maybe), never a leak of the lease.
    members: dict[str, list[int]] = field(default_factory=dict)

    def fly(self, member: str, files: int, size: int) -> None:
        """Move (files, size) into (or, negative, out of) `member`'s flight."""
        self.account.flying_files += files
        self.account.flying_bytes += size
        entry = self.members.setdefault(member, [0, 0])
        entry[0] += files
        entry[1] += size

    def record(
        self, files: int, size: int, seen: int, applied_by: float, kind: tuple[bool, bool, bool]
    ) -> None:
        """Add a change to the open delta of its kind (ambiguous, pending, bounded), or a
        new one: a delta sent in a ledger update (up to `sealed`) never grows."""
        deltas = self.account.deltas
        last = deltas[-1] if deltas else None
        if (
            last is None
            or last.seq <= self.sealed
            or (last.ambiguous, last.pending, last.bounded) != kind
            or last.seen != seen
            # Changes applied within one window of _WINDOW seconds share a delta: its
            # `applied_by` is their latest (an upper bound, which the rebase rule needs),
            # so the books stay small between two settlements (heartbeats: minutes).
            or int(last.applied_by // _WINDOW) != int(applied_by // _WINDOW)
        ):
            self.seq += 1
            last = Delta(seen, applied_by, self.seq)
            last.ambiguous, last.pending, last.bounded = kind
            deltas.append(last)
        last.applied_by = max(last.applied_by, applied_by)
        last.add(files, size)

    def bury(self, dead: list[str], horizon: float) -> None:
        """`dead` members (their processes died) leave the books. What they had in flight
        may have been sent and may land until `horizon`: a lost answer, counted as a maybe
        (seen: no recount, so it is weighed as one no recount placed), never given back."""
        for member in dead:
            files, size = self.members.pop(member, (0, 0))
            self.account.flying_files -= files
            self.account.flying_bytes -= size
            if files or size:
                self.record(files, size, 0, horizon, (True, True, False))

    def dump(self) -> bytes:
        return json.dumps(
            {
                "lease_id": self.lease_id,
                "account": _account_json(self.account),
                "seq": self.seq,
                "sealed": self.sealed,
                "released": None if self.released is None else _account_json(self.released),
                "renew_at": self.renew_at,
                "grace": self.grace,
                "members": self.members,
            },
            separators=(",", ":"),
        ).encode()

    @staticmethod
    def parse(body: bytes) -> Books:
        try:
            raw = json.loads(body)
            released = raw["released"]
            return Books(
                lease_id=str(raw["lease_id"]),
                account=_account(raw["account"]),
                seq=int(raw["seq"]),
                sealed=int(raw["sealed"]),
                released=None if released is None else _account(released),
                renew_at=float(raw["renew_at"]),
                grace=float(raw["grace"]),
                members={str(k): [int(v[0]), int(v[1])] for k, v in raw["members"].items()},
            )
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise BooksDamagedError(f"{type(exc).__name__}: {exc}") from exc


def _account_json(account: Account) -> dict[str, Any]:
    # (by hand: dataclasses.asdict deep-copies, and the books are written on every save)
    raw = dict(vars(account))
    raw["held"] = {token: list(pair) for token, pair in account.held.items()}
    raw["deltas"] = [dict(vars(delta)) for delta in account.deltas]
    return raw


def _account(raw: dict[str, Any]) -> Account:
    fields = dict(raw)
    fields["held"] = {str(k): (int(v[0]), int(v[1])) for k, v in raw["held"].items()}
    fields["deltas"] = [Delta(**delta) for delta in raw["deltas"]]
    return Account(**fields)


class Shelf(Protocol):
    """Where a lease's books are kept. `hold()` gives them exclusively (re-entrant in a
    thread; across processes for a node's shelf), and keeps what was changed when the
    outermost hold ends, an exception included (what the code did before it is real)."""

    def hold(self) -> AbstractContextManager[Books]: ...

    def alive(self, member: str) -> bool:
        """Whether the process of `member` (a name `member()` gave) still runs."""
        ...

    def member(self) -> str:
        """A new member's name, for one `Quota` of this process."""
        ...

    def gone(self, member: str) -> None:
        """`member` left, or was abandoned as a killed process's would be."""
        ...

    def close(self) -> None: ...


class ProcessShelf:
    """The books in memory: one process's lease (the default), or the shared lease of a
    simulated node's actors (`lock`: a lock that waits in the simulation's time)."""

    def __init__(self, lock: AbstractContextManager[Any] | None = None) -> None:
        self._lock: AbstractContextManager[Any] = lock if lock is not None else threading.RLock()
        self._books = Books()
        self._members = 0

    @contextmanager
    def hold(self) -> Iterator[Books]:
        with self._lock:
            yield self._books

    def alive(self, member: str) -> bool:
        return True  # members leave by closing: they share this process's life

    def member(self) -> str:
        self._members += 1
        return f"m{self._members}"

    def gone(self, member: str) -> None:
        pass  # (every member of a process's own shelf is its only one)

    def close(self) -> None:
        pass
