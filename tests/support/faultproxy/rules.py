"""What the fault proxy can do to a request, which requests, and what it records.

A `Fault` is one misbehaviour (reset, blackhole, delay, cut, synthetic S3 error); a `Rule`
pairs it with the requests it applies to (method, path regex, query substring, header
predicate) and a count; `RequestRecord` and `ProxyStats` are what tests assert on. They
are plain data, shared by the proxy's event loop and the test's thread under its lock.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tests.support.faultproxy.http_messages import Message

__all__ = ["Fault", "FaultKind", "HeaderPredicate", "ProxyStats", "RequestRecord", "Rule"]

HeaderPredicate = Callable[[Mapping[str, str]], bool]


class FaultKind(enum.Enum):
    RESET = "reset"
    RESET_AFTER = "reset_after"
    BLACKHOLE = "blackhole"
    DELAY_REQUEST = "delay_request"
    DELIVER_LATE = "deliver_late"
    DELAY_RESPONSE = "delay_response"
    CUT_RESPONSE = "cut_response"
    CUT_UPLOAD = "cut_upload"
    ERROR = "error"


@dataclass(frozen=True)
class Fault:
    """What the proxy does to a matched request; build one with the class methods."""

    kind: FaultKind
    seconds: float = 0.0
    nbytes: int = 0
    status: int = 0
    code: str = ""
    message: str = ""

    @property
    def name(self) -> str:
        """The fault's name in the log: its kind, or the S3 error code of a synthetic error."""
        return self.code if self.kind is FaultKind.ERROR else self.kind.value

    @classmethod
    def reset(cls) -> Fault:
        """RST the client connection when the request arrives: the server never sees it."""
        return cls(FaultKind.RESET)

    @classmethod
    def reset_after(cls) -> Fault:
        """Forward the request, wait for the whole answer, then RST: applied but unseen."""
        return cls(FaultKind.RESET_AFTER)

    @classmethod
    def blackhole(cls) -> Fault:
        """Read the request and never answer, until the client hangs up or the proxy stops."""
        return cls(FaultKind.BLACKHOLE)

    @classmethod
    def delay_request(cls, seconds: float) -> Fault:
        """Hold the request before forwarding it; dropped if the client hangs up meanwhile."""
        return cls(FaultKind.DELAY_REQUEST, seconds=seconds)

    @classmethod
    def deliver_late(cls, seconds: float) -> Fault:
        """Take the whole request but send it on only after `seconds`, whether the client
        still waits or not (a slow server, a request stuck in a queue): it is applied
        after the client gave it up, and its answer is dropped."""
        return cls(FaultKind.DELIVER_LATE, seconds=seconds)

    @classmethod
    def delay_response(cls, seconds: float) -> Fault:
        """Hold the server's answer (the request is applied): a timeout with a hidden outcome."""
        return cls(FaultKind.DELAY_RESPONSE, seconds=seconds)

    @classmethod
    def cut_response(cls, nbytes: int) -> Fault:
        """Forward the status, headers and `nbytes` body bytes (as on the wire, chunk sizes
        included), then close; a body of at most `nbytes` bytes passes whole."""
        return cls(FaultKind.CUT_RESPONSE, nbytes=nbytes)

    @classmethod
    def cut_upload(cls, nbytes: int) -> Fault:
        """Forward the head and `nbytes` request body bytes upstream, then close both sides
        (the client with an RST); a body of at most `nbytes` bytes passes whole."""
        return cls(FaultKind.CUT_UPLOAD, nbytes=nbytes)

    @classmethod
    def s3_error(cls, status: int, code: str, message: str) -> Fault:
        """Answer with an S3 XML error in place of the server; nothing is forwarded."""
        return cls(FaultKind.ERROR, status=status, code=code, message=message)

    @classmethod
    def internal_error(cls) -> Fault:
        return cls.s3_error(500, "InternalError", "We encountered an internal error.")

    @classmethod
    def service_unavailable(cls) -> Fault:
        return cls.s3_error(503, "ServiceUnavailable", "Service is unable to handle request.")

    @classmethod
    def slow_down(cls) -> Fault:
        return cls.s3_error(503, "SlowDown", "Please reduce your request rate.")


@dataclass
class Rule:
    """A fault and the requests it applies to: every criterion given must match.

    `path` is a regex searched in the path, `query` a substring of the raw query (such as
    "uploadId" or "partNumber=2"), `header` a predicate on the lower-cased headers, and
    `times` the number of matching requests it still applies to (None: always).
    """

    fault: Fault
    method: str | None = None
    path: str | None = None
    query: str | None = None
    header: HeaderPredicate | None = None
    times: int | None = None
    applied: int = 0

    @property
    def remaining(self) -> int | None:
        return None if self.times is None else self.times - self.applied

    def matches(self, request: Message, headers: Mapping[str, str]) -> bool:
        return (
            (self.times is None or self.applied < self.times)
            and (self.method is None or self.method.upper() == request.method)
            and (self.path is None or re.search(self.path, request.path) is not None)
            and (self.query is None or self.query in request.query)
            and (self.header is None or self.header(headers))
        )


@dataclass(frozen=True)
class RequestRecord:
    """One request the proxy read: where it came, what applied, what the client was sent."""

    connection: int  # client connection number, from 1
    index: int  # position of the request on that connection, from 1
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    fault: str | None  # Fault.name, None if no rule applied
    status: int | None = None  # final status from the server (or the synthetic error)
    interim: tuple[int, ...] = ()  # 1xx statuses forwarded to the client
    started: float = 0.0  # time.monotonic() when the request was read (before upstream)
    answered: float | None = None  # when its final status came (after the server applied it)


@dataclass(frozen=True)
class ProxyStats:
    accepted: int  # client connections accepted
    active: int  # client connections open now
    requests: int
    faults: Mapping[str, int] = field(default_factory=dict)  # Fault.name -> times applied
