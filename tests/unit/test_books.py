"""A lease's books as data: the codec the node's processes share them in, and flight kept
per member (quota/books.py). Pure: no I/O."""

from __future__ import annotations

import pytest

from objectstore_s3.quota.account import Account, Delta
from objectstore_s3.quota.books import Books, BooksDamagedError


def _busy_books() -> Books:
    books = Books()
    books.account = Account(
        allowance_bytes=5000,
        allowance_files=7,
        held={"token-1": (1, 300)},
        deltas=[Delta(3, 1_800_000_010.5, 4, up_bytes=10, up_files=1, pending=True)],
        generation=3,
        expires=1_800_000_060.0,
        settled=3,
    )
    books.seq, books.sealed, books.grace = 4, 3, 109.0
    books.released = Account(settled=2)
    books.fly("1234.99.1", 1, 100)
    return books


def test_the_books_come_back_as_they_were_written() -> None:
    books = _busy_books()
    again = Books.parse(books.dump())
    assert again == books
    assert again.dump() == books.dump()  # so an unchanged hold writes nothing


def test_flight_is_kept_per_member_and_in_the_accounts_total() -> None:
    books = Books()
    books.fly("a", 1, 100)
    books.fly("b", 2, 50)
    books.fly("a", -1, -100)
    assert (books.account.flying_files, books.account.flying_bytes) == (2, 50)
    assert books.members == {"a": [0, 0], "b": [2, 50]}


def test_each_node_renews_at_a_point_of_its_own() -> None:
    points = {round(Books().renew_at) for _ in range(200)}
    assert min(points) >= 21
    assert max(points) <= 39
    assert len(points) > 10
    assert len({Books().lease_id for _ in range(50)}) == 50


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b'{"lease_id": "x"}', _busy_books().dump()[:-7], b"\x00" * 40],
    ids=["empty", "torn", "a list", "a field short", "cut", "zeros"],
)
def test_books_that_do_not_parse_are_damaged(body: bytes) -> None:
    with pytest.raises(BooksDamagedError):
        Books.parse(body)
