"""What surely existed in the bucket, and when, from the fault proxy's log of requests.

A listing of the bucket is no snapshot: while it walks the keys, a delete behind it and a
create ahead of it both show, so a listing can count more objects than ever existed at
once. The proxy saw every write instead, with when it was read (before the server could
apply it) and when the server's answer came (after it did). From those intervals this
module derives a lower bound on what existed at each moment; a quota that is exceeded by
that lower bound was truly exceeded (no false alarm, whatever the timing).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from tests.support.faultproxy.rules import RequestRecord

__all__ = ["Peak", "Write", "surely_present_peak", "writes_under"]

_NEVER = float("inf")


@dataclass(frozen=True)
class Write:
    """One PUT (or multipart completion) or DELETE of a key, as the proxy saw it."""

    key: str
    kind: str  # "put" or "delete"
    started: float
    answered: float  # _NEVER if no answer came: it may have been applied at any later time
    status: int | None
    size: int

    @property
    def applied(self) -> bool:
        """Surely applied: the server said so."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def may_apply(self) -> bool:
        """Perhaps applied: not refused by a precondition or a client error."""
        return self.status is None or self.status < 400 or self.status >= 500


@dataclass(frozen=True)
class Peak:
    files: int
    bytes: int
    files_at: float
    bytes_at: float


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def writes_under(records: Iterable[RequestRecord], bucket: str, prefix: str) -> list[Write]:
    """The object writes under `bucket`/`prefix` (keys relative to the prefix)."""
    root = f"/{bucket}/{prefix}"
    writes = []
    for record in records:
        path = unquote(record.path)
        query = record.query
        params = query.split("&")
        if record.method == "POST" and "delete" in params and path.rstrip("/") == f"/{bucket}":
            raise ValueError("a multi-object delete: this judge cannot place its keys")
        if not path.startswith(root):
            continue
        if any(sub in params for sub in ("tagging", "acl", "retention")):
            continue  # a sub-resource, not the object's body
        if record.method == "PUT" and "partNumber" not in query and "uploadId" not in query:
            kind = "put"
        elif record.method == "POST" and "uploadId" in query:
            kind = "put"  # a completed multipart upload creates the object
        elif record.method == "DELETE" and "uploadId" not in query:
            kind = "delete"
        else:
            continue
        length = _header(record.headers, "x-amz-decoded-content-length")
        length = length or _header(record.headers, "content-length") or "0"
        writes.append(
            Write(
                path[len(root) :],
                kind,
                record.started,
                _NEVER if record.answered is None else record.answered,
                record.status,
                int(length) if kind == "put" and record.method == "PUT" else 0,
            )
        )
    return writes


def _size_at(puts: list[Write], witness: Write, at: float) -> int:
    """The smallest the object can be at `at`: over every PUT that may be the last applied
    by then (one surely followed by a later applied PUT is not)."""
    candidates = [
        put
        for put in puts
        if put.may_apply
        and put.started <= at
        and put.answered >= witness.started  # not surely before the witness
        and not any(
            later.applied and later.started >= put.answered and later.answered <= at
            for later in puts
        )
    ]
    return min(put.size for put in candidates) if candidates else witness.size


def _present(by_key: Mapping[str, list[Write]], at: float) -> tuple[int, int]:
    """(files, bytes) that surely existed at `at`: a key whose PUT was answered by then,
    and no delete may have landed after that PUT was applied."""
    files = size = 0
    for writes in by_key.values():
        puts = [w for w in writes if w.kind == "put"]
        deletes = [w for w in writes if w.kind == "delete" and w.may_apply and w.started <= at]
        witnesses = [
            put
            for put in puts
            if put.applied
            and put.answered <= at
            and all(delete.answered <= put.started for delete in deletes)
        ]
        if witnesses:
            files += 1
            size += min(_size_at(puts, witness, at) for witness in witnesses)
    return files, size


def surely_present_peak(writes: list[Write]) -> Peak:
    """The most files and bytes that surely existed at one moment."""
    by_key: dict[str, list[Write]] = defaultdict(list)
    for write in writes:
        by_key[write.key].append(write)
    moments = sorted({w.answered for w in writes if w.kind == "put" and w.applied})
    peak = Peak(0, 0, 0.0, 0.0)
    for at in moments:  # what surely exists only grows when a PUT's answer comes
        files, size = _present(by_key, at)
        if files > peak.files:
            peak = Peak(files, peak.bytes, at, peak.bytes_at)
        if size > peak.bytes:
            peak = Peak(peak.files, size, peak.files_at, at)
    return peak
