"""`objectstore-s3 ui`: the web console (objectstore_s3/ui/) for the configured store.

It binds 127.0.0.1 on a free port unless told otherwise, prints one URL carrying a random
token (the first visit trades it for a cookie), and serves until Ctrl-C, then closes the
store (flushing its pending work). `--host` another address warns: anyone who can reach it
and has the URL can act with the store's credentials.
"""

from __future__ import annotations

import threading
import webbrowser
from typing import TYPE_CHECKING, Annotated

import typer

from objectstore_s3.server.seaweedfs import start_local_server
from objectstore_s3.settings import StoragePermissions
from objectstore_s3.store import ObjectStore

from .terminal import USAGE, command, fail, note, reported, settings_from

if TYPE_CHECKING:  # the ui extra may be missing: imported when the command runs
    from objectstore_s3.ui.server import ConsoleServer

__all__ = ["ui_app"]

ui_app = typer.Typer()
LOOPBACK = "127.0.0.1"


@command(
    ui_app,
    "ui",
    "objectstore-s3 ui",
    "objectstore-s3 ui --read-only --open",
    "objectstore-s3 ui --port 8765",
    short_help="The Object Store console in the browser.",
)
def console(
    ctx: typer.Context,
    port: Annotated[
        int, typer.Option("--port", metavar="N", help="Port (default: a free one).")
    ] = 0,
    host: Annotated[
        str, typer.Option("--host", metavar="ADDRESS", help="Address to bind (a warning).")
    ] = LOOPBACK,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Browse and download only.")
    ] = False,
    open_browser: Annotated[bool, typer.Option("--open", help="Open it in the browser.")] = False,
) -> None:
    """Browse, preview, upload, download and delete keys in the browser; see usage."""
    try:
        from objectstore_s3.ui.server import ConsoleServer
    except ImportError as exc:
        fail(f"the console needs the ui extra: pip install 'objectstore-s3[ui]' ({exc})", USAGE)
    settings = settings_from(ctx.obj.overrides)
    if read_only:  # the store itself refuses writes too, not only the console
        granted = settings.permissions
        settings = settings.model_copy(
            update={"permissions": StoragePermissions(read=granted.read, write=False, delete=False)}
        )
    if host != LOOPBACK:
        note(
            f"warning: the console listens on {host}: anyone who can reach it and has the URL "
            "acts with this store's credentials"
        )
    with reported(ctx.obj.debug):
        if settings.endpoint_url == "local":
            start_local_server(settings, report=note)
        with ObjectStore(settings) as store:
            try:
                server = ConsoleServer(store, host=host, port=port, read_only=read_only)
            except OSError as exc:
                fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
            print(f"Object Store console: {server.url}", flush=True)
            note("Ctrl-C stops it.")
            if open_browser:
                threading.Thread(target=_open, args=(server,), daemon=True).start()
            server.run()


def _open(server: ConsoleServer) -> None:
    server.wait_started()
    webbrowser.open(server.url)
