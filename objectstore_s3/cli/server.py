"""`objectstore-s3 server start|stop|status`: the embedded SeaweedFS server of
endpoint_url=local (one per `server_dir`, shared by every store of the user).

start and status report the same fields (text or --json): running, url, pid, port and
the data folder; stop says what it stops, how long it took, and which of the user's
processes have stores connected to it (they start it again on their next request).
"""

from __future__ import annotations

import json
import time
from typing import Any

import typer

from objectstore_s3.server.processes import connected_processes
from objectstore_s3.server.seaweedfs import (
    STOP_GRACE_SECONDS,
    ServerState,
    local_server_status,
    start_local_server,
    stop_local_server,
)
from objectstore_s3.settings import ObjectStoreSettings

from .terminal import Group, JsonFlag, command, examples, note, reported, settings_from

__all__ = ["server_app"]

server_app = typer.Typer(
    cls=Group,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="The embedded local S3 server (SeaweedFS) that endpoint_url=local uses.",
    epilog=examples("objectstore-s3 server status", "objectstore-s3 server stop"),
)


def _server_fields(settings: ObjectStoreSettings, state: ServerState | None) -> dict[str, Any]:
    """What start and status report, in both their JSON and their text."""
    return {
        "running": state is not None,
        "url": state.url if state else None,
        "pid": state.pid if state else None,
        "port": state.port if state else None,
        "server_dir": str(settings.server_dir),
    }


def _print_server(settings: ObjectStoreSettings, state: ServerState | None) -> None:
    fields = _server_fields(settings, state)
    print(f"status:  {'running' if state else 'not running'}")
    if state is not None:
        print(f"url:     {state.url}")
        print(f"pid:     {state.pid}")
        print(f"port:    {state.port}")
    print(f"data:    {fields['server_dir']}")
    if settings.endpoint_url != "local":
        print(f"note:    not used: endpoint_url is {settings.endpoint_url}")


@command(server_app, "start", "objectstore-s3 server start --json")
def server_start(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Start the embedded server (or report the one already running)."""
    settings = settings_from(ctx.obj.overrides)
    with reported(ctx.obj.debug):
        state = start_local_server(settings, report=note)
    if as_json:
        print(json.dumps(_server_fields(settings, state)))
    else:
        _print_server(settings, state)


@command(
    server_app,
    "stop",
    "objectstore-s3 server stop",
    "objectstore-s3 server stop --json",
    short_help="Stop the embedded server (in about 2 s).",
    help=f"Stop the embedded server by its PID: SIGTERM, then SIGKILL after "
    f"{STOP_GRACE_SECONDS:g} s (what it stored is on disk by then). The next command that "
    "needs it starts it again.",
)
def server_stop(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Stop the embedded server (see the help text above)."""
    settings = settings_from(ctx.obj.overrides)
    started = time.monotonic()
    with reported(ctx.obj.debug):  # an unsafe server_dir is one line that names it
        before = local_server_status(settings)
        users = connected_processes(before.port, besides=before.pid) if before else []
        if users and not as_json:
            note(_in_use(users))
        stopped = stop_local_server(settings, report=None if as_json else note)
    seconds = round(time.monotonic() - started, 2)
    if as_json:
        pid = before.pid if before else None
        fields = {"stopped": stopped, "pid": pid, "seconds": seconds, "used_by": users}
        print(json.dumps(fields))
    else:
        print(f"stopped in {seconds:.1f}s" if stopped else "not running")


def _in_use(pids: list[int]) -> str:
    """What `server stop` says when stores of the user are connected to the server."""
    listed = ", ".join(str(pid) for pid in pids)
    return (
        f"in use: stores in process{'es' if len(pids) > 1 else ''} {listed} are connected "
        "to it; a store on endpoint_url=local that finds it gone starts it again and retries"
    )


@command(server_app, "status", "objectstore-s3 server status --json")
def server_status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Whether the embedded server runs: PID, port and data folder."""
    settings = settings_from(ctx.obj.overrides)
    with reported(ctx.obj.debug):
        state = local_server_status(settings)
    if as_json:
        print(json.dumps(_server_fields(settings, state)))
    else:
        _print_server(settings, state)
