"""What the folder and usage pages show, as plain data for their templates, and the
template filters (sizes, times, ETags) the pages share."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .console import Console
from .folders import Entry, page_after, parent_of

__all__ = ["crumbs", "filters", "folder_page", "human_size", "usage_page"]

TOP_FOLDERS = 100  # the usage page's rows: the largest top-level folders


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _when(moment: datetime | None) -> str:
    return "(pending)" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _etag(etag: str | None) -> str:
    return "(pending)" if not etag else etag.strip('"')


def filters() -> dict[str, Callable[..., str]]:
    return {
        "size": human_size,
        "when": _when,
        "etag": _etag,
        "count": lambda n: f"{n:,}",
        "percent": lambda part, whole: f"{100 * part / whole:.0f}%" if whole else "none yet",
        "json": lambda value: json.dumps(value, ensure_ascii=False),  # text, escaped later
    }


def crumbs(prefix: str) -> list[tuple[str, str]]:
    """The folders above and at `prefix`, each (name, its prefix), the top first."""
    found = [("top", "")]
    at = ""
    for name in prefix.rstrip("/").split("/") if prefix else []:
        at += name + "/"
        found.append((name, at))
    return found


def folder_page(
    console: Console, prefix: str, *, after: str, name_filter: str, fresh: bool
) -> dict[str, Any]:
    """One page of a folder: at most the console's page size of its children, following
    the key `after` ("" for the first page), read from a paged listing."""
    if fresh:
        console.changed()
    shown = page_after(console.store.list_page, prefix, name_filter, after, console.page_size)
    return {
        "prefix": prefix,
        "parent": parent_of(prefix) if prefix else None,
        "crumbs": crumbs(prefix),
        "page": shown,
        "after": after,
        "filter": name_filter,
        "usage": console.usage(),
    }


def usage_page(console: Console, *, fresh: bool) -> dict[str, Any]:
    """The organization's usage against both limits, and per top-level folder."""
    if fresh:
        console.changed()
    usage = console.usage()
    top = console.listings.index("")
    folders = sorted((e for e in top.entries if e.folder), key=lambda e: (-e.size, e.name))
    loose = [entry for entry in top.entries if not entry.folder]
    if loose:
        size = sum(entry.size for entry in loose)
        folders.append(Entry("(keys outside any folder)", "", True, size, len(loose)))
    return {
        "usage": usage,
        "ledger": console.store.ledger_health(),
        "folders": folders[:TOP_FOLDERS],
        "more": max(0, len(folders) - TOP_FOLDERS),
    }
