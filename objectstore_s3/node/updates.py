"""Read-modify-write of one key, safe across threads, processes and nodes.

The value is read from the bucket (never a stale cache entry), the caller's function
makes the new value, and the save is conditional on the ETag read (`If-Match`), or on
absence (`If-None-Match: *`). A 412 means another writer came first: read again and
apply the function again, after a backoff with full jitter so that N contending
writers spread out instead of colliding in lockstep. Every successful round is one
write the server checked against the value it was computed from, so N concurrent
updates of a counter add exactly N.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from objectstore_s3.errors import PreconditionFailedError
from objectstore_s3.transport.base import ObjectInfo

from .writer import Expect, Writer

__all__ = ["read_modify_write"]

_FIRST_WAIT = 0.005  # seconds: the backoff's first ceiling, doubled per conflict
_LONGEST_WAIT = 0.5


def read_modify_write(
    writer: Writer,
    key: str,
    change: Callable[[bytes | None], bytes],
    *,
    attempts: int,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> tuple[bytes, ObjectInfo]:
    """Apply `change` to the key's current value (None: no object) and save the result
    conditionally, retrying on conflict; the new value and what the bucket answered."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    draw = rng if rng is not None else random.Random()  # noqa: S311 (jitter, not a secret)
    conflict: PreconditionFailedError | None = None
    for attempt in range(attempts):
        with writer.locked(key):
            writer.settle(key)
            current = writer.view.current(key)
        value = change(None if current is None else current.body)
        expect = Expect(absent=True) if current is None else Expect(etag=current.info.etag)
        try:
            return value, writer.put_checked(key, value, expect)
        except PreconditionFailedError as exc:
            conflict = exc
        if attempt + 1 < attempts:
            sleep(draw.uniform(0, min(_LONGEST_WAIT, _FIRST_WAIT * 2**attempt)))
    raise PreconditionFailedError(
        f"'{key}' was changed by other writers during each of {attempts} attempts to update "
        "it; try again, or pass a larger attempts=.",
        key=key,
        current_etag=None if conflict is None else conflict.current_etag,
    ) from conflict
