"""A backend wrapper that interrupts the store's object writes, as Ctrl-C would: a
KeyboardInterrupt raised before a write is delegated (it never lands) or after (it landed
and its answer is lost to the caller). Wraps any backend (the in-memory one, or the real
one a store opened), and every scope made from it; the store's own records (the ledger,
under `.objectstore/`) are never interrupted."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

WRITES = ("put", "upload", "delete", "copy")


class Plan:
    """What the next object writes meet, in order: "before", "after" or "pass" (then
    everything passes). `signal`: interrupt with a real SIGINT sent to this process
    (its handler raises) rather than by raising KeyboardInterrupt directly."""

    def __init__(self, steps: list[str] | None = None, *, signal: bool = False) -> None:
        self.steps = list(steps or [])
        self.signal = signal
        self.interrupted: list[tuple[str, str, str]] = []  # (stage, operation, key)

    def next(self) -> str:
        return self.steps.pop(0) if self.steps else "pass"

    def interrupt(self, stage: str, operation: str, key: str) -> None:
        self.interrupted.append((stage, operation, key))
        if self.signal:
            # The handler (KeyboardInterrupt by default) runs in the main thread at once,
            # at the next instruction: from wherever this write happens to be.
            os.kill(os.getpid(), signal.SIGINT)
            return
        raise KeyboardInterrupt(f"interrupted {stage} {operation} {key}")


class Interrupting:
    """The wrapped backend; writes of objects follow `plan`, everything else delegates."""

    def __init__(self, inner: Any, plan: Plan, prefix: str = "") -> None:
        self._inner = inner
        self.plan = plan
        self._internal = ".objectstore/" in prefix

    def scoped(self, prefix: str) -> Interrupting:
        return Interrupting(self._inner.scoped(prefix), self.plan, prefix)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in WRITES or self._internal:
            return attribute
        return self._write(name, attribute)

    def _write(self, operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def write(key: str, *args: Any, **kwargs: Any) -> Any:
            step = self.plan.next()
            if step == "before":
                self.plan.interrupt("before", operation, key)
            result = method(key, *args, **kwargs)
            if step == "after":
                self.plan.interrupt("after", operation, key)
            return result

        return write
