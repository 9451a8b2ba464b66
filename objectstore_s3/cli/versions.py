"""Versions and safe updates on the command line (issue 19): `versions KEY`, `restore KEY
VERSION`, and what `get --version`, `put --if-match/--if-absent` and `rm` say. The
messages name the command to run next, not the Python call."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from objectstore_s3.errors import KeyNotFoundError, ObjectStoreError, PreconditionFailedError
from objectstore_s3.lean import KeyVersion
from objectstore_s3.store import ObjectStore

from .actions import SCHEME
from .session import open_store
from .terminal import JsonFlag, command, fail, normalized_key, note

__all__ = [
    "conflict",
    "key_name",
    "restorable_note",
    "versions_app",
    "write_version",
]

versions_app = typer.Typer()

KeyArgument = Annotated[str, typer.Argument(metavar="KEY", help="The key, e.g. 123/model.")]
_CHUNK = 1024 * 1024


def key_name(text: str, debug: bool) -> str:
    """A key as typed, with or without the `os://` of cp and sync (invalid: exit 2)."""
    return normalized_key(text.removeprefix(SCHEME), debug)


def _when(version: KeyVersion) -> str:
    moment = version.last_modified
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z") if moment else "-"


def _version_json(version: KeyVersion) -> dict[str, Any]:
    return {
        "key": version.key,
        "version_id": version.version_id,
        "size": version.size,
        "etag": version.etag.strip('"') if version.etag else None,
        "last_modified": version.last_modified.isoformat() if version.last_modified else None,
        "current": version.is_current,
        "deleted": version.deleted,
    }


def _missing_version(key: str, version: str) -> NoReturn:
    fail(f"no version '{version}' of '{key}' (see `objectstore-s3 versions {key}`)")


@command(
    versions_app,
    "versions",
    "objectstore-s3 versions 123/model",
    "objectstore-s3 versions 123/model --json",
)
def versions(ctx: typer.Context, key: KeyArgument, as_json: JsonFlag = False) -> None:
    """A key's versions, newest first, deletions included (a versioned bucket keeps them)."""
    name = key_name(key, ctx.obj.debug)
    with open_store(ctx) as store:
        found = store.history(name)
    if not found:
        fail(f"no such key '{name}' (see `objectstore-s3 ls`)")
    if as_json:
        print(json.dumps([_version_json(version) for version in found]))
        return
    width = max(len(version.version_id) for version in found)
    for version in found:
        etag = (version.etag or "-").strip('"')
        state = "deleted" if version.deleted else ("current" if version.is_current else "")
        size = "-" if version.deleted else str(version.size)
        line = f"{version.version_id:<{width}}  {size:>10}  {_when(version)}  {etag:<34}  {state}"
        print(line.rstrip())


@command(
    versions_app,
    "restore",
    "objectstore-s3 versions 123/model",
    "objectstore-s3 restore 123/model VERSION_ID",
)
def restore(
    ctx: typer.Context,
    key: KeyArgument,
    version: Annotated[
        str, typer.Argument(metavar="VERSION", help="A version id from `versions KEY`.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Make an earlier version the key's value again (undeletes a deleted key); never
    overwrites a change made meanwhile."""
    name = key_name(key, ctx.obj.debug)
    with open_store(ctx) as store:
        try:
            stat = store.restore(name, version)
        except KeyNotFoundError:
            _missing_version(name, version)
        except PreconditionFailedError as exc:
            now = exc.current_etag
            fail(
                f"not restored: '{name}' changed meanwhile (it is "
                f"{'deleted' if now is None else 'at ETag ' + now.strip(chr(34))}) and was "
                f"not overwritten; see `objectstore-s3 versions {name}`, then restore again"
            )
    etag = (stat.etag or "").strip('"')
    if as_json:
        print(json.dumps({"key": name, "restored_version": version, "etag": etag}))
        return
    print(f"restored '{name}' to version {version} (ETag {etag})")


def write_version(store: ObjectStore, key: str, version: str, output: str) -> None:
    """`get KEY --version V`: that version's value to stdout or to a file (streamed from
    the read-only file the store keeps for it)."""
    try:
        path = Path(store.get_file_path(key, version=version))
    except KeyNotFoundError:
        _missing_version(key, version)
    if output != "-":
        shutil.copyfile(path, output)
        return
    with path.open("rb") as handle:
        shutil.copyfileobj(handle, sys.stdout.buffer, _CHUNK)
    sys.stdout.buffer.flush()


def restorable_note(store: ObjectStore, key: str) -> None:
    """After `rm`: on a versioned bucket the deleted value is kept; say how to get it back
    (nothing if the versions cannot be listed: the key is deleted all the same)."""
    try:
        kept = [version for version in store.history(key) if not version.deleted]
    except ObjectStoreError:
        return
    if kept:
        note(
            f"'{key}' can be restored: `objectstore-s3 restore {key} {kept[0].version_id}` "
            f"(its versions: `objectstore-s3 versions {key}`)"
        )


def conflict(key: str, exc: PreconditionFailedError, if_absent: bool) -> NoReturn:
    """`put --if-match / --if-absent` lost: one line naming the current ETag."""
    if exc.current_etag is None:
        fail(f"not saved: '{key}' does not exist (put it without --if-match, or --if-absent)")
    etag = exc.current_etag.strip('"')
    if if_absent:
        fail(f"not saved: '{key}' exists already (ETag {etag}); --if-match {etag} replaces it")
    fail(
        f"not saved: '{key}' has changed, its current ETag is {etag}; get it again and "
        f"retry with --if-match {etag}"
    )
