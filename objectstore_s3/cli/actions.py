"""The steps of `cp`, `mv` and `sync` (upload, download, server-side copy, delete) and
how they run: in parallel on at most `max_concurrency` threads, with one progress bar for
all their bytes, a line per step as `aws s3` prints them (`upload: a to os://b`), or one
JSON object for scripts; a step that fails is one error line and the others go on."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from objectstore_s3.errors import KeyNotFoundError, ObjectStoreError
from objectstore_s3.store import ObjectStore

from .terminal import FAILED, error, progress_bar

__all__ = ["SCHEME", "Step", "copy", "delete_file", "delete_key", "download", "run", "upload"]

SCHEME = "os://"  # how a command line argument names a key (a local path never starts so)
Progress = Callable[[int], None]


class _Refused(ObjectStoreError):
    """The store refused a save and has said why (quota): nothing more to print."""


@dataclass(frozen=True)
class Step:
    """One thing to do: `action` as printed, what it reads and writes (as the user named
    them), its size (for progress) and the call that does it."""

    action: str
    source: str | None
    target: str
    size: int
    call: Callable[[Progress | None], object]

    def line(self) -> str:
        return (
            f"{self.action}: {self.source} to {self.target}"
            if self.source
            else (f"{self.action}: {self.target}")
        )

    def fields(self) -> dict[str, Any]:
        return {"action": self.action, "source": self.source, "target": self.target}


def upload(store: ObjectStore, path: Path, key: str, *, move: bool = False) -> Step:
    def call(progress: Progress | None) -> None:
        if not store.upload_file(key, path, progress):
            raise _Refused(f"'{key}' was not saved")
        if move:
            path.unlink()

    size = path.stat().st_size
    return Step("move" if move else "upload", str(path), SCHEME + key, size, call)


def download(
    store: ObjectStore,
    key: str,
    path: Path,
    *,
    size: int,
    mtime: float | None,
    move: bool = False,
) -> Step:
    """The file gets the object's time, so that a later sync sees it as the same."""

    def call(progress: Progress | None) -> None:
        if path.is_dir():
            raise IsADirectoryError(21, "it is a folder", str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        store.download_file(key, path, progress)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        if move:
            store.delete(key)

    return Step("move" if move else "download", SCHEME + key, str(path), size, call)


def copy(store: ObjectStore, source: str, key: str, *, size: int, move: bool = False) -> Step:
    """A server-side copy (no bytes through this machine), quota-counted by the store."""

    def call(progress: Progress | None) -> None:
        store.copy(source, key)
        if progress is not None:
            progress(size)
        if move:
            store.delete(source)

    return Step("move" if move else "copy", SCHEME + source, SCHEME + key, size, call)


def delete_key(store: ObjectStore, key: str) -> Step:
    return Step("delete", None, SCHEME + key, 0, lambda progress: store.delete(key))


def delete_file(path: Path) -> Step:
    return Step("delete", None, str(path), 0, lambda progress: path.unlink())


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyNotFoundError):
        return f"no such key '{exc.key}'"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)


@dataclass
class _Outcome:
    done: list[Step]
    failed: list[tuple[Step, str]]


def _execute(
    phases: Sequence[Sequence[Step]], workers: int, label: str, as_json: bool, debug: bool
) -> _Outcome:
    outcome = _Outcome([], [])
    lock = threading.Lock()
    total = sum(step.size for phase in phases for step in phase)

    def one(step: Step, progress: Progress | None) -> None:
        try:
            step.call(progress)
        except (ObjectStoreError, OSError) as exc:
            if debug:
                raise
            with lock:
                outcome.failed.append((step, _reason(exc)))
                if not isinstance(exc, _Refused):  # the store has said why
                    error(f"{step.action} failed: {step.line().split(': ', 1)[1]}: {_reason(exc)}")
            return
        with lock:
            outcome.done.append(step)
            if not as_json:
                print(step.line(), flush=True)

    with progress_bar(label, total) as progress, ThreadPoolExecutor(workers) as pool:
        for phase in phases:  # deletions only after every transfer
            for future in [pool.submit(one, step, progress) for step in phase]:
                future.result()
    return outcome


def run(
    phases: Sequence[Sequence[Step]],
    *,
    workers: int,
    label: str,
    as_json: bool = False,
    dry_run: bool = False,
    unchanged: int = 0,
    rejected: Sequence[dict[str, Any]] = (),
    debug: bool = False,
) -> None:
    """Do the steps, phase after phase, or with `dry_run` only say what they would do.
    Exit 1 if a step failed or something was `rejected` before (said already, each a
    JSON object with its "error")."""
    steps = [step for phase in phases for step in phase]
    if dry_run:
        outcome = _Outcome(steps, [])
        if not as_json:
            for step in steps:
                print(f"(dry run) {step.line()}")
    else:
        outcome = _execute(phases, workers, label, as_json, debug)
    if as_json:
        order = {id(step): index for index, step in enumerate(steps)}
        report = {
            "actions": [s.fields() for s in sorted(outcome.done, key=lambda s: order[id(s)])],
            "failed": [
                *rejected,
                *({**step.fields(), "error": why} for step, why in outcome.failed),
            ],
            "unchanged": unchanged,
            "dry_run": dry_run,
        }
        print(json.dumps(report))
    if outcome.failed or rejected:
        raise typer.Exit(FAILED)
