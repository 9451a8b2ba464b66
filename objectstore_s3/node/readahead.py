"""Fetch values ahead for iteration and `read_many`: bounded parallelism, bounded memory.

Values are yielded in the order of the keys. Up to `workers` reads run at once, and no
new read starts while the values fetched but not yet taken by the caller add up to
`max_bytes` or more, so the memory held is at most `max_bytes` plus the reads in flight
(each at most one value), and at most 16 x `workers` values wait. An abandoned
iteration cancels what has not started.

A value is read ahead of its turn, so this process may write the key in between (a loop
that deletes or saves the keys it visits): `mark(key)` changes with every such write,
and a value whose mark changed since its read began is read again when its turn comes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

__all__ = ["fetch_ahead"]

Read = Callable[[str], bytes | None]
Fetched = tuple[int, bytes | None, Exception | None]  # (mark before, value, error)
Window = deque[tuple[str, Future[Fetched]]]


def fetch_ahead(
    read: Read, keys: Iterable[str], *, mark: Callable[[str], int], workers: int, max_bytes: int
) -> Iterator[tuple[str, Callable[[], bytes | None]]]:
    """Each key with its value, in order: calling it returns the value or raises the read's
    error (KeyNotFoundError for a key deleted meanwhile)."""

    def marked(key: str) -> Fetched:
        before = mark(key)
        try:
            return before, read(key), None
        except Exception as exc:  # raised at the key's turn, unless it was written since
            return before, None, exc

    def taken(key: str, future: Future[Fetched]) -> Callable[[], bytes | None]:
        def value() -> bytes | None:
            before, data, error = future.result()
            if mark(key) != before:
                return read(key)
            if error is not None:
                raise error
            return data

        return value

    pending = iter(keys)
    window: Window = deque()
    held = 0  # bytes of finished reads the caller has not taken yet
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="objectstore-read")
    try:
        exhausted = False
        while True:
            while not exhausted and _room(window, held, workers, max_bytes):
                key = next(pending, None)
                if key is None:
                    exhausted = True
                    break
                window.append((key, pool.submit(marked, key)))
            if not window:
                return
            key, future = window[0]
            if not future.done():
                wait([f for _, f in window if not f.done()], return_when=FIRST_COMPLETED)
                held = _held(window)
                continue
            window.popleft()
            held = _held(window)
            yield key, taken(key, future)
    finally:
        for _, future in window:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


def _room(window: Window, held: int, workers: int, limit: int) -> bool:
    in_flight = sum(1 for _, f in window if not f.done())
    if in_flight >= workers or len(window) >= workers * 16:  # many tiny values: cap count
        return False
    return held < limit or not window


def _held(window: Window) -> int:
    total = 0
    for _, future in window:
        if future.done() and not future.cancelled():
            value = future.result()[1]
            total += len(value) if value is not None else 0
    return total
