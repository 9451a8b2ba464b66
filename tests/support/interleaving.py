"""A backend wrapper that interleaves a test's action with the store's requests: `act`
runs once, just before the first call of the given backend operations ("get", "put",
"copy", ...) on the given key is delegated, so another node's write, or a version pruned
by retention, lands exactly between two of the store's requests. Wraps any backend (the
in-memory one, or the real one a store opened) and every scope made from it; keys are
relative to the scope, as the store's objects see them (a copy's key is its destination),
and the store's own records (the ledger, under `.objectstore/`) never trigger."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

KEYED = ("head", "get", "download", "put", "upload", "delete", "copy", "delete_version")


@dataclass(eq=False)  # each action is its own, even when two look alike
class _Once:
    operations: frozenset[str]
    key: str
    act: Callable[[], object]


class Hooks:
    """The pending actions, shared by a wrapper and all its scopes (and their threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[_Once] = []

    def add(self, once: _Once) -> None:
        with self._lock:
            self._pending.append(once)

    def due(self, operation: str, key: str) -> list[_Once]:
        """The actions this call triggers, each taken once (never again, even from `act`)."""
        with self._lock:
            hits = [o for o in self._pending if operation in o.operations and o.key == key]
            self._pending = [o for o in self._pending if o not in hits]
        return hits


class Interleaving:
    """The wrapped backend: keyed calls first run the actions they trigger, then delegate."""

    def __init__(self, inner: Any, hooks: Hooks | None = None, prefix: str = "") -> None:
        self.inner = inner
        self._hooks = hooks if hooks is not None else Hooks()
        self._internal = ".objectstore/" in prefix

    def once_before(self, operations: Iterable[str], key: str, act: Callable[[], object]) -> None:
        """Run `act` once, just before the first of `operations` on `key` is delegated."""
        unknown = set(operations) - set(KEYED)
        assert not unknown, f"not keyed backend operations: {sorted(unknown)}"
        self._hooks.add(_Once(frozenset(operations), key, act))

    def scoped(self, prefix: str) -> Interleaving:
        return Interleaving(self.inner.scoped(prefix), self._hooks, prefix)

    def __getattr__(self, name: str) -> Any:
        if self._internal or name not in KEYED:
            return getattr(self.inner, name)
        attribute = getattr(self.inner, name)
        position = 1 if name == "copy" else 0  # copy(source, key, ...)

        def call(*args: Any, **kwargs: Any) -> Any:
            key = args[position] if len(args) > position else kwargs.get("key")
            for once in self._hooks.due(name, str(key)):
                once.act()
            return attribute(*args, **kwargs)

        return call
