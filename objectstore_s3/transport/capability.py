"""Does the S3 server honour conditional writes? Probed once per bucket and process.

Exact quotas and safe replays rest on `If-None-Match: *` and `If-Match` being enforced.
Some S3 implementations accept the headers and ignore them (`rclone serve s3` does), which
would silently break both; so before the first write the store creates a probe object,
writes it again with `If-None-Match: *` and with a wrong `If-Match` (both must fail with
412), tries a delete with a wrong `If-Match` (must fail too, or deletes fall back to a
HEAD first), and removes the probe.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable

from objectstore_s3.errors import KeyNotFoundError, ObjectStoreError, PreconditionFailedError

from .base import Backend, Capabilities

__all__ = ["probe"]

_WRONG_ETAG = '"00000000000000000000000000000000"'
_probed: dict[str, Capabilities] = {}
_lock = threading.Lock()


def probe(records: Backend) -> Capabilities:
    """What `records`' server honours (cached per bucket for the process)."""
    with _lock:
        known = _probed.get(records.name)
    if known is not None:
        return known
    key = f"probe/{uuid.uuid4().hex}"
    records.put(key, b"probe", if_none_match="*")
    try:
        conditional_put = _refused(lambda: records.put(key, b"again", if_none_match="*"))
        conditional_put = conditional_put and _refused(
            lambda: records.put(key, b"again", if_match=_WRONG_ETAG)
        )
        conditional_delete = _refused(lambda: records.delete(key, if_match=_WRONG_ETAG))
        if conditional_delete and records.head(key) is None:
            conditional_delete = False  # "refused", yet deleted
    finally:
        with contextlib.suppress(ObjectStoreError):
            records.delete(key)
    found = Capabilities(conditional_put, conditional_delete)
    with _lock:
        _probed[records.name] = found
    return found


def _refused(write: Callable[[], object]) -> bool:
    try:
        write()
    except PreconditionFailedError:
        return True
    except KeyNotFoundError:
        return False
    return False
