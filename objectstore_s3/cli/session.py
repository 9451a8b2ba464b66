"""A command's settings and store: the global flags (kept in `ctx.obj` by the app's
callback) over the environment, the embedded server started first when the endpoint is
`local`, and the store's errors as one line with an exit code. Shared by every module of
commands, so each opens its store the same way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from objectstore_s3.server.seaweedfs import ServerState, start_local_server
from objectstore_s3.settings import ObjectStoreSettings
from objectstore_s3.store import ObjectStore

from .terminal import note, reported, settings_from

__all__ = ["ensure_server", "open_store", "settings_of"]


def settings_of(ctx: typer.Context) -> ObjectStoreSettings:
    """The settings with the command line's flags applied (invalid: exit 2)."""
    return settings_from(ctx.obj.overrides)


def ensure_server(ctx: typer.Context, settings: ObjectStoreSettings) -> ServerState | None:
    """Start the embedded server first (endpoint_url=local), saying so if this starts it."""
    if settings.endpoint_url != "local":
        return None
    with reported(ctx.obj.debug):
        return start_local_server(settings, report=note)


@contextmanager
def open_store(ctx: typer.Context, **options: Any) -> Iterator[ObjectStore]:
    """The command's store, closed (and flushed) at the end of the block."""
    settings = settings_of(ctx)
    ensure_server(ctx, settings)
    with reported(ctx.obj.debug), ObjectStore(settings, **options) as store:
        yield store
