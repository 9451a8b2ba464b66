"""The fault matrix: every public operation under network and server faults, through
the fault proxy (tests/faults/test_fault_matrix_*.py); its cases and their figures.

A matrix on SeaweedFS: (operation) x (fault) x (write mode), each fault either persistent
(every matching request, until the test heals the proxy) or transient (the first matching
request only). The proxy's rules pick the one S3 request the case is about (the GET of
the object, not the ledger's; the PUT of the ledger, not the object's), so each case
fails exactly the step it names. For each case:

1. the outcome: a transient fault is retried away and the call returns whole, correct
   data; a persistent one is a `StorageUnavailableError` (an `ObjectStoreError`), never
   a foreign exception; a write whose answer was only delayed (the server applied it)
   is resolved and succeeds;
2. the time: under the bound the README states, computed from the settings below;
3. nothing partial: no value cached, no partial file at the key's path, the bucket, the
   node view, the usage and the ledger as before a failed write; in write-behind the
   pending work is kept and a later flush with the proxy healthy uploads it.

The CLI cases run `python -m objectstore_s3` against the proxy: one line and exit 1.
The rig that runs a case is in fault_rig.py; the figures below are those the README's
time bound is computed with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.faultproxy import Fault

# Short timeouts keep the matrix fast; the bound below is computed from them.
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 1.5
MAX_ATTEMPTS = 3
FAST: dict[str, Any] = {
    "connect_timeout_seconds": CONNECT_TIMEOUT,
    "read_timeout_seconds": READ_TIMEOUT,
    "max_attempts": MAX_ATTEMPTS,
}


def request_bound(attempts: int, connect: float, read: float) -> float:
    """One request's worst case in s3client.S3Connection.call: every attempt waits out the
    connect and read timeouts, with the capped exponential backoff between attempts."""
    backoff = sum(min(2.0, 0.1 * 2.0 ** (n - 1)) for n in range(1, attempts))
    return attempts * (connect + read) + backoff


REQUEST = request_bound(MAX_ATTEMPTS, CONNECT_TIMEOUT, READ_TIMEOUT)
# A write whose answer is lost is sent again for at most 3 rounds (commit.py; the
# ledger's update in quota.py likewise), each round one request's worth plus a HEAD.
WRITE_ROUNDS = 3
FAST_FAULTS = ("refused", "reset", "delay", "cut_upload", "500", "503", "slowdown")
SLACK = 2.0  # a noisy 2-core machine: a bound check, not a performance test
FIXED = 3.0  # the requests of a call that succeed, and the store's own work

OLD = os.urandom(48 * 1024)
NEW = os.urandom(64 * 1024)
KEY = "dir/k"

FAULTS: dict[str, Fault | None] = {
    "refused": None,  # the proxy stops listening: every connect is refused
    "reset": Fault.reset(),
    "blackhole": Fault.blackhole(),
    "delay": Fault.delay_response(3 * READ_TIMEOUT),  # applied, answered too late
    "cut_body": Fault.cut_response(100),
    "cut_upload": Fault.cut_upload(100),  # the ledger is ~300 bytes: cut it too
    "500": Fault.internal_error(),
    "503": Fault.service_unavailable(),
    "slowdown": Fault.slow_down(),
}
BODY_FAULTS = {"cut_body"}  # need a response body
UPLOAD_FAULTS = {"cut_upload"}  # need a request body


# Transient faults (once, then healthy) must be retried away: a sample of each kind.
ONCE = ("reset", "blackhole", "cut_body", "cut_upload", "503")


@dataclass(frozen=True)
class Case:
    fault: str
    persistent: bool
    mode: str  # "through" (persistence_interval_seconds=0) or "behind" (3600)

    @property
    def interval(self) -> float:
        return 3600.0 if self.mode == "behind" else 0.0


def cases(
    *,
    body: bool = False,
    upload: bool = False,
    modes: tuple[str, ...] = ("through", "behind"),
    faults: tuple[str, ...] | None = None,
    once: tuple[str, ...] | None = ONCE,
) -> list[Any]:
    """The matrix for one operation: the faults that make sense for its target request
    (`body`: it has a response body; `upload`: a request body), or only `faults`,
    persistent, and transient for those in `once` (None: all; a refused port is all or
    nothing: persistent only), in `modes`."""
    params = []
    for fault in faults or FAULTS:
        if (fault in BODY_FAULTS and not body) or (fault in UPLOAD_FAULTS and not upload):
            continue
        for mode in modes:
            for persistent in (True, False):
                if not persistent and (
                    fault == "refused" or (once is not None and fault not in once)
                ):
                    continue
                case = Case(fault, persistent, mode)
                name = f"{fault}-{'always' if persistent else 'once'}-{mode}"
                params.append(pytest.param(case, id=name))
    return params


# Reads do not depend on the write mode (a pending key is read from the journal, without
# a request): every fault in write-through, a sample in write-behind.
BEHIND_SAMPLE = ("refused", "503")


def read_cases(*, body: bool = False) -> list[Any]:
    return cases(body=body, modes=("through",)) + cases(
        body=body, modes=("behind",), faults=BEHIND_SAMPLE, once=()
    )


LEDGER_PATH = r"^/{bucket}/\.objectstore/{org}/usage\.json$"
