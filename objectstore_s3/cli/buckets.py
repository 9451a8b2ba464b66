"""`objectstore-s3 bucket create|status|versioning`: the buckets the user owns, on the
configured endpoint (the embedded server creates only its default bucket by itself; any
other is made here). Versioning keeps every overwritten or deleted value (`versions`,
`restore`); S3 can only suspend it once it was on, never turn it off again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any

import typer

from objectstore_s3.errors import BucketNotFoundError
from objectstore_s3.server.seaweedfs import resolve_endpoint
from objectstore_s3.transport.base import Backend
from objectstore_s3.transport.boto3.backend import S3Backend

from .session import ensure_server
from .terminal import Group, JsonFlag, command, examples, reported, settings_from

__all__ = ["bucket_app"]

bucket_app = typer.Typer(
    cls=Group,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Buckets you own: create one, see its state, turn its versioning on or off.",
    epilog=examples(
        "objectstore-s3 bucket create algo-store --versioned",
        "objectstore-s3 bucket status algo-store",
        "objectstore-s3 bucket versioning on",
    ),
)

NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The bucket's name.")]
DefaultName = Annotated[
    str | None,
    typer.Argument(metavar="NAME", help="The bucket (default: --bucket / OBJECTSTORE_BUCKET)."),
]


class Versioning(StrEnum):
    on = "on"
    off = "off"
    status = "status"


@contextmanager
def _bucket(ctx: typer.Context, name: str | None) -> Iterator[tuple[str, Backend]]:
    """The named (or configured) bucket, whether it exists or not; errors as one line."""
    overrides = {**ctx.obj.overrides, **({"bucket": name} if name else {})}
    settings = settings_from(overrides)
    ensure_server(ctx, settings)
    with reported(ctx.obj.debug):
        backend = S3Backend(settings, resolve_endpoint(settings))
        try:
            yield settings.bucket, backend
        finally:
            backend.close()


def _state(backend: Backend) -> str | None:
    """The bucket's versioning ("enabled", "suspended", "off"), None if it does not exist."""
    try:
        return backend.versioning()
    except BucketNotFoundError:
        return None


def _show(
    bucket: str, backend: Backend, state: str | None, as_json: bool, headline: str | None
) -> None:
    fields: dict[str, Any] = {
        "bucket": bucket,
        "where": backend.name,
        "exists": state is not None,
        "versioning": state,
    }
    if as_json:
        print(json.dumps(fields))
        return
    if headline:
        print(headline)
    for label, value in fields.items():
        shown = {True: "yes", False: "no", None: "-"}.get(value, value)
        print(f"{label + ':':<12} {shown}")


@command(
    bucket_app,
    "create",
    "objectstore-s3 bucket create algo-store",
    "objectstore-s3 bucket create algo-store --versioned",
)
def create(
    ctx: typer.Context,
    name: NameArgument,
    versioned: Annotated[
        bool, typer.Option("--versioned", help="Keep earlier values (versioning on).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a bucket (nothing if it is yours already)."""
    with _bucket(ctx, name) as (bucket, backend):
        existed = _state(backend) is not None
        backend.create_bucket(versioned=versioned)
        state = _state(backend)
    headline = f"bucket '{name}' {'exists already' if existed else 'created'}"
    _show(bucket, backend, state, as_json, headline)


@command(bucket_app, "status", "objectstore-s3 bucket status", "objectstore-s3 bucket status NAME")
def status(ctx: typer.Context, name: DefaultName = None, as_json: JsonFlag = False) -> None:
    """Whether a bucket exists, and its versioning."""
    with _bucket(ctx, name) as (bucket, backend):
        state = _state(backend)
    _show(bucket, backend, state, as_json, None)


@command(
    bucket_app,
    "versioning",
    "objectstore-s3 bucket versioning status",
    "objectstore-s3 bucket versioning on",
    "objectstore-s3 bucket versioning off algo-store",
)
def versioning(
    ctx: typer.Context,
    action: Annotated[Versioning, typer.Argument(metavar="on|off|status", help="What to do.")],
    name: DefaultName = None,
    as_json: JsonFlag = False,
) -> None:
    """Turn a bucket's versioning on, suspend it (off), or show it."""
    with _bucket(ctx, name) as (bucket, backend):
        if action is not Versioning.status:
            backend.set_versioning(action is Versioning.on)
        state = backend.versioning()
    headline = None
    if action is Versioning.off:
        headline = (
            "versioning suspended: new writes keep no earlier value; the versions kept so "
            "far stay (S3 cannot turn versioning off once it was on)"
        )
    _show(bucket, backend, state, as_json, headline)
