"""The `objectstore-s3` command line (also `python -m objectstore_s3`).

Configured by the same settings as the library (OBJECTSTORE_* variables, `.env`), with
flags for the common ones. Exit codes: 0 ok, 1 the operation failed (missing key, refused
by quota, permission, unreachable), 2 usage error (including invalid keys and settings).
Every error is one line on stderr, written for a command-line user; `--debug` shows the
traceback. Help is plain text with examples; `terminal` renders help and errors.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from objectstore_s3 import __version__
from objectstore_s3.errors import KeyNotFoundError, ObjectStoreError, PreconditionFailedError
from objectstore_s3.store import ObjectStat, ObjectStore

from .buckets import bucket_app
from .listing import long_lines, when
from .pending import pending_lines, pending_usage
from .presign import presign_app
from .server import server_app
from .session import ensure_server as _ensure_server
from .session import open_store as _store
from .session import settings_of as _settings
from .terminal import (
    FAILED,
    USAGE,
    Group,
    JsonFlag,
    command,
    error,
    examples,
    fail,
    install_log_lines,
    listing_prefix,
    log_lines,
    normalized_key,
    note,
    progress_bar,
    reported,
)
from .terminal import run as run_cli
from .transfers import transfers_app
from .ui import ui_app
from .versions import conflict, restorable_note, versions_app, write_version

__all__ = ["app", "main"]

_CHUNK = 1024 * 1024

app = typer.Typer(
    cls=Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="QuantConnect-style Object Store on an S3 bucket.",
    epilog=examples(
        "objectstore-s3 demo",
        "objectstore-s3 put 123/model model.bin",
        "objectstore-s3 --org my-org ls 123/ --long",
        "OBJECTSTORE_ENDPOINT_URL=http://127.0.0.1:9000 objectstore-s3 du",
    ),
)
app.add_typer(server_app, name="server", short_help="The embedded S3 server (endpoint_url=local).")
app.add_typer(transfers_app)  # cp, mv, sync
app.add_typer(versions_app)  # versions, restore
app.add_typer(presign_app)  # presign
app.add_typer(bucket_app, name="bucket", short_help="Create a bucket, see it, its versioning.")
app.add_typer(ui_app)  # ui: the web console (cli/ui.py)
stdout = Console(highlight=False)

KeyArgument = Annotated[str, typer.Argument(metavar="KEY", help="The key, e.g. 123/model.")]


@dataclass(frozen=True)
class Options:
    overrides: dict[str, Any]
    debug: bool


def _version(value: bool) -> None:
    if value:
        print(f"objectstore-s3 {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    org: Annotated[str | None, typer.Option("--org", metavar="ID", help="Organization id.")] = None,
    bucket: Annotated[
        str | None, typer.Option("--bucket", metavar="NAME", help="Bucket name.")
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", metavar="URL", help="'local', 'aws' or an http(s) URL."),
    ] = None,
    prefix: Annotated[
        str | None, typer.Option("--prefix", metavar="PREFIX", help="Bucket prefix.")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    values = {
        "organization_id": org,
        "bucket": bucket,
        "endpoint_url": endpoint_url,
        "prefix": prefix,
    }
    ctx.obj = Options({name: value for name, value in values.items() if value is not None}, debug)
    install_log_lines()


def _stat_json(stat: ObjectStat) -> dict[str, Any]:
    return {
        "key": stat.key,
        "size": stat.size,
        "etag": stat.etag.strip('"') if stat.etag else None,
        "last_modified": stat.last_modified.isoformat() if stat.last_modified else None,
    }


@command(
    app,
    "ls",
    "objectstore-s3 ls",
    "objectstore-s3 ls 123/ -lh",
    "objectstore-s3 ls --json",
    context_settings={"help_option_names": ["--help"]},  # -h: human sizes, as in ls -lh
)
def list_keys(
    ctx: typer.Context,
    prefix: Annotated[
        str, typer.Argument(metavar="PREFIX", help="Only keys starting with this.")
    ] = "",
    long: Annotated[bool, typer.Option("--long", "-l", help="Size, time and ETag.")] = False,
    human: Annotated[bool, typer.Option("-h", help="With --long: sizes in KiB, MiB...")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List keys."""
    start = listing_prefix(prefix, ctx.obj.debug)
    with _store(ctx) as store:
        stats = store.list_objects(start)
    if as_json:
        print(json.dumps([_stat_json(stat) for stat in stats]))
        return
    for line in long_lines(stats, human=human) if long else [stat.key for stat in stats]:
        print(line)


@command(
    app,
    "get",
    "objectstore-s3 get 123/config.json",
    "objectstore-s3 get 123/model -o model.bin",
    "objectstore-s3 get 123/prices.csv | head",
    "objectstore-s3 get 123/model --version VERSION_ID -o old-model.bin",
)
def get(
    ctx: typer.Context,
    key: KeyArgument,
    output: Annotated[
        str,
        typer.Option("--output", "-o", metavar="FILE", help="File to write; - is stdout."),
    ] = "-",
    version: Annotated[
        str | None,
        typer.Option("--version", metavar="V", help="An earlier version (see `versions KEY`)."),
    ] = None,
) -> None:
    """Write a key's value to stdout or to a file."""
    name = normalized_key(key, ctx.obj.debug)
    target = Path(output)
    if output != "-" and target.is_dir():
        fail(f"cannot write {output}: it is a folder; name the file, e.g. -o {output}/value")
    if output != "-" and not target.parent.is_dir():
        fail(f"cannot write {output}: there is no folder {target.parent}")
    with _store(ctx) as store:
        if version is not None:
            write_version(store, name, version, output)
            return
        size = store.stat(name).size
        with progress_bar(f"get {name}", size) as progress:
            if output != "-":
                try:
                    store.download_file(name, target, progress)
                except ObjectStoreError:
                    raise
                except OSError as exc:  # name the user's path, not a temporary file
                    if ctx.obj.debug:
                        raise
                    fail(f"cannot write {output}: {exc.strerror or exc}")
                return
            with tempfile.TemporaryDirectory() as folder:
                temporary = Path(folder) / "value"
                store.download_file(name, temporary, progress)
                with temporary.open("rb") as handle:
                    shutil.copyfileobj(handle, sys.stdout.buffer, _CHUNK)
                sys.stdout.buffer.flush()


@command(
    app,
    "put",
    "objectstore-s3 put 123/model model.bin",
    "echo '{\"One\": 1}' | objectstore-s3 put 123/config.json -",
    "objectstore-s3 put 123/notes -      (type the value, end with Ctrl-D)",
    "objectstore-s3 put 123/risk.json risk.json --if-match ETAG",
)
def put(
    ctx: typer.Context,
    key: KeyArgument,
    source: Annotated[
        str | None,
        typer.Argument(metavar="FILE", help="File to upload; - reads stdin (piped or typed)."),
    ] = None,
    if_match: Annotated[
        str | None,
        typer.Option("--if-match", metavar="ETAG", help="Only if the key still has this ETag."),
    ] = None,
    if_absent: Annotated[bool, typer.Option("--if-absent", help="Only if the key is new.")] = False,
) -> None:
    """Save a file's content (or stdin's) under a key."""
    name = normalized_key(key, ctx.obj.debug)
    if if_match is not None and if_absent:
        fail("give --if-match or --if-absent, not both", USAGE)
    condition = {"if_match": if_match, "if_absent": if_absent}
    if source is None:
        if sys.stdin.isatty():
            fail(
                "put needs a FILE to upload, or - to read the value from stdin "
                "(e.g. objectstore-s3 put KEY model.bin, or: ... | objectstore-s3 put KEY -)",
                USAGE,
            )
        source = "-"
    if source != "-" and not Path(source).is_file():
        fail(f"{source} is not a file" if Path(source).exists() else f"no such file: {source}")
    refused: list[ObjectStoreError] = []
    with _store(ctx, on_error=refused.append) as store:
        if source != "-":
            _upload(store, name, Path(source), refused, **condition)
            return
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "value"
            with path.open("wb") as handle:
                if sys.stdin.isatty():
                    note(f"reading the value of '{name}' from the terminal; end it with Ctrl-D")
                    # Unbuffered: one Ctrl-D ends it (a buffered read would wait for two).
                    while chunk := os.read(sys.stdin.fileno(), _CHUNK):
                        handle.write(chunk)
                else:
                    shutil.copyfileobj(sys.stdin.buffer, handle, _CHUNK)
            _upload(store, name, path, refused, **condition)


def _upload(
    store: ObjectStore, key: str, path: Path, refused: list[ObjectStoreError], **condition: Any
) -> None:
    errors_before = log_lines.errors
    with progress_bar(f"put {key}", path.stat().st_size) as progress:
        try:
            saved = store.upload_file(key, path, progress, **condition)
        except PreconditionFailedError as exc:
            conflict(key, exc, condition["if_absent"])
        if not saved:
            if log_lines.errors == errors_before:  # the store did not log the reason
                error(str(refused[-1]) if refused else f"'{key}' was not saved")
            raise typer.Exit(FAILED)


@command(app, "rm", "objectstore-s3 rm 123/old-model", "objectstore-s3 rm 123/a 123/b")
def remove(
    ctx: typer.Context,
    keys: Annotated[list[str], typer.Argument(metavar="KEY", help="Keys to delete.")],
) -> None:
    """Delete keys."""
    names = [normalized_key(key, ctx.obj.debug) for key in keys]
    failed = False
    with _store(ctx) as store:
        for name in names:
            try:
                store.delete(name)
                restorable_note(store, name)
            except ObjectStoreError as exc:  # say it, and go on with the other keys
                if ctx.obj.debug:
                    raise
                missing = isinstance(exc, KeyNotFoundError)
                error(f"no such key '{name}' (see `objectstore-s3 ls`)" if missing else str(exc))
                failed = True
    if failed:
        raise typer.Exit(FAILED)


@command(app, "stat", "objectstore-s3 stat 123/model", "objectstore-s3 stat 123/model --json")
def stat(ctx: typer.Context, key: KeyArgument, as_json: JsonFlag = False) -> None:
    """Size, last modified time and ETag of a key."""
    name = normalized_key(key, ctx.obj.debug)
    with _store(ctx) as store:
        info = store.stat(name)
    if as_json:
        print(json.dumps(_stat_json(info)))
        return
    print(f"key:           {info.key}")
    print(f"size:          {info.size}")
    print(f"last modified: {when(info.last_modified)}")
    print(f"etag:          {(info.etag or '(pending)').strip(chr(34))}")


def _bar(used: int, limit: int, width: int = 30) -> str:
    share = 1.0 if limit <= 0 else min(used / limit, 1.0)
    filled = round(share * width)
    return "█" * filled + "░" * (width - filled) + f" {share:6.1%}"


@command(app, "du", "objectstore-s3 du", "objectstore-s3 du --reconcile --json")
def disk_usage(
    ctx: typer.Context,
    reconcile: Annotated[
        bool, typer.Option("--reconcile", help="Recount from a listing of the bucket.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """The organization's usage against its quota."""
    with _store(ctx) as store:
        usage = store.reconcile_usage() if reconcile else store.usage()
        listed = store.usage() if reconcile else usage
        pending = pending_usage(store, listed)  # the ledger, where it differs
    if as_json:
        print(json.dumps({**usage._asdict(), "pending": pending}))
        return
    print(
        f"bytes  {usage.bytes:>14,} of {usage.max_size:>14,}  {_bar(usage.bytes, usage.max_size)}"
    )
    print(
        f"files  {usage.files:>14,} of {usage.max_files:>14,}  {_bar(usage.files, usage.max_files)}"
    )
    for line in pending_lines(pending, listed) if pending else []:
        print(line)


@command(
    app,
    "demo",
    "objectstore-s3 demo",
    "objectstore-s3 demo --keep",
    short_help="Walk the documentation, checking each step.",
)
def demo(
    ctx: typer.Context,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the keys the demo makes.")] = False,
) -> None:
    """Walk the Object Store documentation end to end, checking every step; plot a chart."""
    from .demo import run

    settings = _settings(ctx)
    _ensure_server(ctx, settings)
    with reported(ctx.obj.debug):
        ok = run(settings, keep=keep, console=stdout)
    if not ok:
        raise typer.Exit(FAILED)


def main(argv: list[str] | None = None) -> None:
    """The console script: usage errors as one line with exit code 2."""
    sys.exit(run_cli(typer.main.get_command(app), argv))
