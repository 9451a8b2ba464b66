"""What the fault proxy was told and what it saw: its rules, the log of the requests it
read, and its connection counts. The test's thread and the proxy's event loop share them
under one condition, which every change notifies (so a test can wait for a state)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tests.support.faultproxy.http_messages import Message
from tests.support.faultproxy.rules import (
    Fault,
    HeaderPredicate,
    ProxyStats,
    RequestRecord,
    Rule,
)


class Traffic:
    """The rules (tried in order, the first that matches applies) and the request log."""

    def __init__(self) -> None:
        self._cond = threading.Condition()  # an RLock: predicates may call the properties
        self._rules: list[Rule] = []
        self._log: list[RequestRecord] = []
        self._faults: dict[str, int] = {}
        self._accepted = 0
        self._active = 0

    # -- from the test's thread ---------------------------------------------------------

    def add_rule(
        self,
        fault: Fault,
        method: str | None,
        path: str | None,
        query: str | None,
        header: HeaderPredicate | None,
        times: int | None,
    ) -> Rule:
        rule = Rule(fault, method, path, query, header, times)
        with self._cond:
            self._rules.append(rule)
        return rule

    def clear_rules(self) -> None:
        with self._cond:
            self._rules.clear()

    def clear_requests(self) -> None:
        with self._cond:
            self._log.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        with self._cond:
            return list(self._log)

    @property
    def stats(self) -> ProxyStats:
        with self._cond:
            return ProxyStats(self._accepted, self._active, len(self._log), dict(self._faults))

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise TimeoutError(f"proxy state did not reach the condition: {self.stats}")

    # -- from the event loop ------------------------------------------------------------

    def opened(self) -> int:
        """Count a new client connection; its number (from 1)."""
        with self._cond:
            self._accepted += 1
            self._active += 1
            self._cond.notify_all()
            return self._accepted

    def closed(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def admit(self, connection: int, index: int, request: Message) -> tuple[Fault | None, int]:
        """Log the `index`th request of client `connection`; the fault of the first rule
        that matches it (None: forward it as it is), and its position in the log."""
        headers = {name: request.header(name) or "" for name, _ in request.headers}
        with self._cond:
            rule = next((r for r in self._rules if r.matches(request, headers)), None)
            fault = None
            if rule is not None:
                rule.applied += 1
                fault = rule.fault
                self._faults[fault.name] = self._faults.get(fault.name, 0) + 1
            self._log.append(
                RequestRecord(
                    connection,
                    index,
                    request.method,
                    request.path,
                    request.query,
                    headers,
                    fault.name if fault else None,
                    started=time.monotonic(),
                )
            )
            self._cond.notify_all()
            return fault, len(self._log) - 1

    def note(self, position: int, **changes: Any) -> None:
        """Record what became of a logged request (a status: when it was answered)."""
        with self._cond:
            if position < len(self._log):  # unless clear_requests() came in between
                if "status" in changes:
                    changes["answered"] = time.monotonic()
                self._log[position] = replace(self._log[position], **changes)
            self._cond.notify_all()

    def started(self, position: int) -> float:
        with self._cond:
            return self._log[position].started if position < len(self._log) else 0.0
