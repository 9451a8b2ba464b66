"""The `objectstore-s3` command line (also `python -m objectstore_s3`).

Configured by the same settings as the library (OBJECTSTORE_* variables, `.env`), with
flags for the common ones. Exit codes: 0 ok, 1 the operation failed (missing key, refused
by quota, permission, unreachable), 2 usage or settings error. Errors are one line on
stderr; `--debug` shows the traceback.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from .errors import ObjectStoreError
from .server import local_server_status, start_local_server, stop_local_server
from .settings import ObjectStoreSettings
from .store import ObjectStat, ObjectStore

__all__ = ["app", "main"]

PROGRESS_THRESHOLD = 4 * 1024 * 1024
_CHUNK = 1024 * 1024

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="QuantConnect-style Object Store on an S3 bucket.",
)
server_app = typer.Typer(no_args_is_help=True, help="The embedded local S3 server (SeaweedFS).")
app.add_typer(server_app, name="server")
stderr = Console(stderr=True, highlight=False)
stdout = Console(highlight=False)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@dataclass(frozen=True)
class Options:
    overrides: dict[str, Any]
    debug: bool


@app.callback()
def _options(
    ctx: typer.Context,
    org: Annotated[str | None, typer.Option("--org", help="Organization id.")] = None,
    bucket: Annotated[str | None, typer.Option("--bucket", help="Bucket name.")] = None,
    endpoint_url: Annotated[
        str | None, typer.Option("--endpoint-url", help="'local', 'aws' or a URL.")
    ] = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Bucket prefix.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    values = {
        "organization_id": org,
        "bucket": bucket,
        "endpoint_url": endpoint_url,
        "prefix": prefix,
    }
    ctx.obj = Options({name: value for name, value in values.items() if value is not None}, debug)


def _error(message: str) -> None:
    """One line on stderr, whatever the terminal width."""
    typer.echo("error: " + " ".join(message.split()), err=True)


def _settings(ctx: typer.Context) -> ObjectStoreSettings:
    options: Options = ctx.obj
    try:
        return ObjectStoreSettings(**options.overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        _error(f"invalid settings: {problems}")
        raise typer.Exit(2) from exc


@contextmanager
def _reported(ctx: typer.Context) -> Iterator[None]:
    """Turn the store's errors into one line on stderr and exit code 1."""
    try:
        yield
    except (ObjectStoreError, OSError) as exc:
        if ctx.obj.debug:
            raise
        _error(str(exc))
        raise typer.Exit(1) from exc


@contextmanager
def _store(ctx: typer.Context) -> Iterator[ObjectStore]:
    settings = _settings(ctx)
    with _reported(ctx), ObjectStore(settings) as store:
        yield store


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for transfers over a few MB, when stderr is a terminal."""
    if total < PROGRESS_THRESHOLD or not stderr.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda done: progress.advance(task, done)


def _stat_json(stat: ObjectStat) -> dict[str, Any]:
    return {
        "key": stat.key,
        "size": stat.size,
        "etag": stat.etag.strip('"') if stat.etag else None,
        "last_modified": stat.last_modified.isoformat() if stat.last_modified else None,
    }


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "(pending)"


@app.command("ls")
def list_keys(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Argument(help="Only keys starting with this.")] = "",
    long: Annotated[bool, typer.Option("--long", "-l", help="Size, time and ETag.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List keys."""
    with _store(ctx) as store:
        stats = store.list_objects(prefix)
    if as_json:
        print(json.dumps([_stat_json(stat) for stat in stats]))
        return
    for stat in stats:
        if long:
            etag = (stat.etag or "").strip('"')
            print(f"{stat.size:>12}  {_when(stat.last_modified)}  {etag:<34}  {stat.key}")
        else:
            print(stat.key)


@app.command("get")
def get(
    ctx: typer.Context,
    key: str,
    output: Annotated[
        str, typer.Option("--output", "-o", help="File to write, or - for stdout.")
    ] = "-",
) -> None:
    """Write a key's value to a file or stdout."""
    with _store(ctx) as store:
        size = store.stat(key).size
        with _progress(f"get {key}", size) as progress:
            if output != "-":
                store.download_file(key, output, progress)
                return
            with tempfile.TemporaryDirectory() as folder:
                temporary = Path(folder) / "value"
                store.download_file(key, temporary, progress)
                with temporary.open("rb") as handle:
                    shutil.copyfileobj(handle, sys.stdout.buffer, _CHUNK)
                sys.stdout.buffer.flush()


@app.command("put")
def put(
    ctx: typer.Context,
    key: str,
    source: Annotated[str, typer.Argument(help="File to upload, or - for stdin.")] = "-",
) -> None:
    """Save a file's (or stdin's) content under a key."""
    with (
        _store(ctx) as store,
        tempfile.TemporaryDirectory() if source == "-" else nullcontext() as folder,
    ):
        if folder is not None:
            path = Path(folder) / "value"
            with path.open("wb") as handle:
                shutil.copyfileobj(sys.stdin.buffer, handle, _CHUNK)
        else:
            path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{source} is not a file")
        with _progress(f"put {key}", path.stat().st_size) as progress:
            if not store.upload_file(key, path, progress):
                stderr.print(f"error: '{key}' was not saved (quota); see the message above")
                raise typer.Exit(1)


@app.command("rm")
def remove(ctx: typer.Context, keys: Annotated[list[str], typer.Argument()]) -> None:
    """Delete keys."""
    failed = False
    with _store(ctx) as store:
        for key in keys:
            try:
                store.delete(key)
            except ObjectStoreError as exc:
                if ctx.obj.debug:
                    raise
                _error(str(exc))
                failed = True
    if failed:
        raise typer.Exit(1)


@app.command("stat")
def stat(ctx: typer.Context, key: str, as_json: JsonFlag = False) -> None:
    """Size, last modified time and ETag of a key."""
    with _store(ctx) as store:
        info = store.stat(key)
    if as_json:
        print(json.dumps(_stat_json(info)))
        return
    print(f"key:           {info.key}")
    print(f"size:          {info.size}")
    print(f"last modified: {_when(info.last_modified)}")
    print(f"etag:          {(info.etag or '(pending)').strip(chr(34))}")


def _bar(used: int, limit: int, width: int = 30) -> str:
    share = 1.0 if limit <= 0 else min(used / limit, 1.0)
    filled = round(share * width)
    return "█" * filled + "░" * (width - filled) + f" {share:6.1%}"


@app.command("du")
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
    if as_json:
        print(json.dumps(usage._asdict()))
        return
    print(
        f"bytes  {usage.bytes:>14,} of {usage.max_size:>14,}  {_bar(usage.bytes, usage.max_size)}"
    )
    print(
        f"files  {usage.files:>14,} of {usage.max_files:>14,}  {_bar(usage.files, usage.max_files)}"
    )


@server_app.command("start")
def server_start(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Start the embedded server (or report the one already running)."""
    settings = _settings(ctx)
    with _reported(ctx):
        state = start_local_server(settings)
    if as_json:
        print(json.dumps({"url": state.url, "pid": state.pid, "data_dir": state.data_dir}))
    else:
        print(f"running at {state.url} (pid {state.pid}, data in {state.data_dir})")


@server_app.command("stop")
def server_stop(ctx: typer.Context) -> None:
    """Stop the embedded server by its PID (SIGTERM, then SIGKILL after a timeout)."""
    settings = _settings(ctx)
    with _reported(ctx):
        stopped = stop_local_server(settings)
    print("stopped" if stopped else "not running")


@server_app.command("status")
def server_status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Whether the embedded server runs, and where."""
    settings = _settings(ctx)
    state = local_server_status(settings)
    if as_json:
        print(
            json.dumps(
                {
                    "running": state is not None,
                    "url": state.url if state else None,
                    "pid": state.pid if state else None,
                }
            )
        )
    elif state is None:
        print("not running")
    else:
        print(f"running at {state.url} (pid {state.pid}, data in {state.data_dir})")


@app.command("demo")
def demo(
    ctx: typer.Context,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the keys the demo makes.")] = False,
) -> None:
    """Walk the Object Store documentation end to end, checking every step."""
    from .demo import run

    settings = _settings(ctx)
    with _reported(ctx):
        ok = run(settings, keep=keep, console=stdout)
    if not ok:
        raise typer.Exit(1)


def main() -> None:
    app()
