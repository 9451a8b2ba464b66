"""`objectstore-s3 presign KEY [--expires 1h]`: a URL that downloads a value without
credentials (`curl`, a browser, a colleague), as `aws s3 presign` and `mc share download`
give. Durations as people write them: 90s, 30m, 1h, 7d (S3 allows at most 7 days)."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer

from objectstore_s3.objects import MAX_PRESIGN_SECONDS

from .session import open_store
from .terminal import USAGE, JsonFlag, command, fail
from .versions import key_name

__all__ = ["parse_duration", "presign_app"]

presign_app = typer.Typer()

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+)([smhd]?)")


def parse_duration(text: str) -> int | None:
    """Seconds from `90`, `90s`, `30m`, `1h` or `7d`; None if it is no such duration."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found is None:
        return None
    return int(found[1]) * _UNITS[found[2] or "s"]


@command(
    presign_app,
    "presign",
    "objectstore-s3 presign 123/report.html",
    "objectstore-s3 presign 123/model --expires 7d",
    'curl -o model.bin "$(objectstore-s3 presign 123/model --expires 30m)"',
    short_help="A URL that downloads a key without credentials.",
)
def presign(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(metavar="KEY", help="The key, e.g. 123/model.")],
    expires: Annotated[
        str,
        typer.Option("--expires", metavar="DURATION", help="How long it works: 30m, 1h, 7d."),
    ] = "1h",
    as_json: JsonFlag = False,
) -> None:
    """Print a URL that downloads the key's value without credentials until it expires."""
    name = key_name(key, ctx.obj.debug)
    seconds = parse_duration(expires)
    if seconds is None or not 1 <= seconds <= MAX_PRESIGN_SECONDS:
        fail(
            f"--expires {expires}: give a duration from 1s to 7d (S3's longest), "
            "e.g. 30m, 1h or 7d",
            USAGE,
        )
    with open_store(ctx) as store:
        store.stat(name)  # a URL for a key that is not there would only say 404 later
        url = store.presign_url(name, seconds)
    if as_json:
        print(json.dumps({"key": name, "url": url, "expires_in": seconds}))
        return
    print(url)
