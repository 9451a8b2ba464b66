"""One member's hold on a lease's books (books.py): the account, read and changed only
while held, and what a member does to the books (its flight, its changes, leaving them).
`Bookkeeper` (bookkeeper.py) is a holder that also keeps the books' lease in the ledger.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .account import Account
from .books import Books, Shelf

__all__ = ["Holder"]


class Holder:
    """A member of a lease's books (one `Quota`), holding them through its `shelf`."""

    def __init__(self, shelf: Shelf, grace: float) -> None:
        self._shelf = shelf
        self.grace = grace
        self.member = shelf.member()
        self._left = False  # this member left the books (the store closed)
        self._holding = threading.local()  # .books: the books, while this thread holds them

    def server_high(self) -> float:
        """An upper bound of the server's clock now (the bookkeeper asks the bucket)."""
        raise NotImplementedError

    @contextmanager
    def hold(self) -> Iterator[Books]:
        """The lease's books, exclusively (re-entrant): every read and change of the
        account happens inside, and what changed is kept for the node's other processes
        when the outermost hold ends."""
        with self._shelf.hold() as books:
            outer = getattr(self._holding, "books", None)
            self._holding.books = books
            try:
                if not self._left and self.member not in books.members:
                    books.members[self.member] = [0, 0]
                    books.grace = max(books.grace, self.grace)
                yield books
            finally:
                self._holding.books = outer

    # The lock of the account: holding the books is holding it.
    lock = property(lambda self: self.hold())

    def _held(self) -> Books:
        books: Books | None = getattr(self._holding, "books", None)
        if books is None:
            with self.hold() as books:  # a look from outside (tests, reports)
                return books
        return books

    @property
    def state(self) -> Account:
        return self._held().account

    @state.setter
    def state(self, account: Account) -> None:
        self._held().account = account

    @property
    def seq(self) -> int:
        return self._held().seq

    @property
    def renew_at(self) -> float:
        return self._held().renew_at

    @property
    def lease_id(self) -> str:
        return self._held().lease_id

    def fly(self, files: int, size: int) -> None:
        """Move (files, size) into this member's flight (negative: out of it)."""
        self._held().fly(self.member, files, size)

    def leave(self) -> bool:
        """This member is done (its store closes): whether it was the lease's last live
        one (the lease may then be given back), after burying members that died."""
        with self.hold() as books:
            self._bury(books)
            if books.members.get(self.member) == [0, 0]:
                del books.members[self.member]
                self._left = True
            return not books.members

    def close(self) -> None:
        """Let go of the books. A member that did not `leave` (a store abandoned as a
        killed process would be) stays in them: the node's other processes bury it."""
        self._shelf.gone(self.member)
        self._shelf.close()

    def record(
        self, files: int, size: int, seen: int, applied_by: float, kind: tuple[bool, bool, bool]
    ) -> None:
        """Add a change to the books (`Books.record`); a lost answer (`kind[1]`) may be
        applied by `grace` (the worst case of one write) at the latest, the one assumption
        made about slow servers."""
        self._held().record(files, size, seen, applied_by + (self.grace if kind[1] else 0), kind)

    def _bury(self, books: Books) -> None:
        """Members whose process died leave the books (`Books.bury`)."""
        dead = [m for m in books.members if m != self.member and not self._shelf.alive(m)]
        if dead:
            books.bury(dead, self.server_high() + self.grace)
