"""Does the S3 server honour conditional writes? Probed once per bucket and process.

Exact quotas and safe replays rest on `If-None-Match: *` and `If-Match` being enforced.
Some S3 implementations accept the headers and ignore them (`rclone serve s3` does), which
would silently break both; so before the first write the store creates a probe object,
writes it again with `If-None-Match: *` and with a wrong `If-Match` (both must fail with
412), tries a delete with a wrong `If-Match` (must fail too, or deletes fall back to a
HEAD first), copies it twice onto a second probe that exists, with `If-None-Match: *` and
with a wrong `If-Match` (both must fail, or a restore cannot be made safe), and removes
the probes (every version of them, on a versioned bucket). A server that cannot be
written at all is not probed: the caller's request reports that failure under its own key.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable

from objectstore_s3.errors import (
    KeyNotFoundError,
    ObjectStoreError,
    OutcomeUnknownError,
    PreconditionFailedError,
    StorageUnavailableError,
)

from .base import Backend, Capabilities

__all__ = ["probe"]

_WRONG_ETAG = '"00000000000000000000000000000000"'
_probed: dict[str, Capabilities] = {}
# What a write assumes while the server cannot be probed (it fails before it is sent):
# preconditions sent as if honoured, deletes and copies looked at first (the safe side).
_NOT_YET = Capabilities(conditional_put=True, conditional_delete=False, conditional_copy=False)
_lock = threading.Lock()


def probe(records: Backend) -> Capabilities:
    """What `records`' server honours (cached per bucket for the process)."""
    with _lock:
        known = _probed.get(records.name)
    if known is not None:
        return known
    key = f"probe/{uuid.uuid4().hex}"
    try:
        versioned = records.put(key, b"probe", if_none_match="*").version_id is not None
    except StorageUnavailableError as exc:
        # Nothing can be written there now (unreachable, failing): nothing is learnt. The
        # caller's own request meets the same failure and names the user's key, not this
        # probe's; the next write probes again.
        if isinstance(exc, OutcomeUnknownError):
            _remove(records, key, versioned=False)
        return _NOT_YET
    try:
        conditional_put = _refused(lambda: records.put(key, b"again", if_none_match="*"))
        conditional_put = conditional_put and _refused(
            lambda: records.put(key, b"again", if_match=_WRONG_ETAG)
        )
        conditional_delete = _refused(lambda: records.delete(key, if_match=_WRONG_ETAG))
        if conditional_delete and records.head(key) is None:
            conditional_delete = False  # "refused", yet deleted
        conditional_copy = _copy_refused(records, key)
    except StorageUnavailableError:
        # The server stopped answering midway (a lost answer is no verdict): nothing is
        # learnt, the safe side is assumed for this write and the next one probes again.
        return _NOT_YET
    finally:
        _remove(records, key, versioned)
    found = Capabilities(conditional_put, conditional_delete, conditional_copy)
    with _lock:
        _probed[records.name] = found
    return found


def _copy_refused(records: Backend, key: str) -> bool:
    """Whether CopyObject honours preconditions on its destination (a server that refuses
    them outright, 501 or 400, honours nothing either)."""
    target = f"{key}-copy"
    try:
        records.put(target, b"target")
        refused = _refused(lambda: records.copy(key, target, if_none_match="*"))
        refused = refused and _refused(lambda: records.copy(key, target, if_match=_WRONG_ETAG))
    except StorageUnavailableError:
        raise
    except ObjectStoreError:
        return False
    return refused and _unchanged(records, target)


def _unchanged(records: Backend, target: str) -> bool:
    data = records.get(target)
    return data is not None and data.body == b"target"


def _remove(records: Backend, key: str, versioned: bool) -> None:
    """Delete the probes; on a versioned bucket, each of their versions for good."""
    with contextlib.suppress(ObjectStoreError):
        for name in (key, f"{key}-copy"):
            records.delete(name)
        if versioned:
            for version in list(records.list_versions(key)):
                records.delete_version(version.key, version.version_id)


def _refused(write: Callable[[], object]) -> bool:
    try:
        write()
    except PreconditionFailedError:
        return True
    except KeyNotFoundError:
        return False
    return False
