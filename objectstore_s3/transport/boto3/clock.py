"""The server's clock, estimated from the `Date` headers of its responses. Pure: no I/O.

Lease expiry and "was this object written after that save was accepted?" are decided on
the server's clock, never a node's own (which may run minutes off). Each response says
the server's time in whole seconds; with the local monotonic times at which the request
was sent and the answer arrived, it bounds the offset `server - monotonic`:

    Date <= server time at the answer < Date + 1,  sent <= monotonic at the answer <= received
    =>  Date - received  <=  offset  <=  Date + 1 - sent

Every response narrows the interval; `now()` gives bounds, and decisions are made only
when they hold for the whole interval.
"""

from __future__ import annotations

import threading
import time
from email.utils import parsedate_to_datetime

__all__ = ["ServerClock", "parse_http_date"]


def parse_http_date(value: str | None) -> float | None:
    """Seconds since 1970 of an HTTP `Date` header, or None if absent or unreadable."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


class ServerClock:
    """Bounds of the server's clock, from (Date, sent, received) observations."""

    def __init__(self, resolution: float = 1.0) -> None:
        self.resolution = resolution
        self._lock = threading.Lock()
        self._low: float | None = None
        self._high: float | None = None
        self._dateless = False

    def observe(self, server_date: float | None, sent: float, received: float) -> None:
        """Record one response: its Date and the monotonic times around its request."""
        if server_date is None:
            self._dateless = True
            return
        low = server_date - received
        high = server_date + self.resolution - sent
        with self._lock:
            if self._low is None or self._high is None:
                self._low, self._high = low, high
                return
            new_low, new_high = max(self._low, low), min(self._high, high)
            if new_low > new_high:  # the server's clock was stepped: start over
                new_low, new_high = low, high
            self._low, self._high = new_low, new_high

    def now(self) -> tuple[float, float] | None:
        """(earliest, latest) possible server time now; None before any response."""
        with self._lock:
            if self._low is None or self._high is None:
                if self._dateless:
                    # Answers without a Date header (in-process mocks): the server runs in
                    # this process, on this clock.
                    wall = time.time()
                    return (wall - 2.0, wall + 2.0)
                return None
            mono = time.monotonic()
            return (mono + self._low, mono + self._high)

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()
