"""Folders over a flat key space. The folder page is read a page at a time from
`ObjectStore.list_page` (`page_after`): the listing stops once the page is full, so the
first page of a 100,000-key folder costs one page of listing; a sub-folder is one row.

The usage page needs totals per top-level folder: for it, one listing of a prefix becomes a
sorted index of its children (sub-folders with their totals, then keys), kept `ttl`
seconds (and until the console itself changes a key). A filter is a prefix of the
child's name, found by bisection in the sorted index.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from objectstore_s3.lean import ObjectStat

__all__ = [
    "Entry",
    "Folder",
    "FolderIndex",
    "Listings",
    "Page",
    "Paged",
    "page_after",
    "parent_of",
]


@dataclass(frozen=True)
class Entry:
    """A child of a folder: a key (`folder` False) or a sub-folder with its totals."""

    name: str  # the child's name within the folder ("model.pkl", or "2024" for "2024/")
    path: str  # the whole key, or the sub-folder's prefix ending in "/"
    folder: bool
    size: int  # bytes (a sub-folder: of every key under it)
    files: int  # 1 for a key; keys under a sub-folder
    etag: str | None = None
    last_modified: datetime | None = None


@dataclass
class Folder:
    """A sub-folder's totals while a listing is indexed."""

    size: int = 0
    files: int = 0


@dataclass(frozen=True)
class FolderIndex:
    """The children of one prefix, sub-folders first, each part sorted by name."""

    prefix: str
    entries: Sequence[Entry]
    names: Sequence[str]  # the sort key of `entries`: "0name" for folders, "1name" for keys
    size: int  # bytes under the prefix
    files: int  # keys under the prefix
    made_at: float  # the clock's time of the listing

    @classmethod
    def build(cls, prefix: str, stats: Sequence[ObjectStat], made_at: float) -> FolderIndex:
        folders: dict[str, Folder] = {}
        keys: list[Entry] = []
        total = 0
        start = len(prefix)
        for stat in stats:
            total += stat.size
            rest = stat.key[start:]
            cut = rest.find("/")
            if cut < 0:
                entry = Entry(rest, stat.key, False, stat.size, 1, stat.etag, stat.last_modified)
                keys.append(entry)
                continue
            folder = folders.setdefault(rest[:cut], Folder())
            folder.size += stat.size
            folder.files += 1
        entries = [
            Entry(name, f"{prefix}{name}/", True, folder.size, folder.files)
            for name, folder in sorted(folders.items())
        ]
        keys.sort(key=lambda entry: entry.name)
        entries += keys
        names = [("0" if entry.folder else "1") + entry.name for entry in entries]
        return cls(prefix, entries, names, total, len(stats), made_at)

    def runs(self, name_prefix: str) -> list[tuple[int, int]]:
        """The index ranges of the children whose name starts with `name_prefix`: the
        matching sub-folders, then the matching keys (one range, all, for "")."""
        if not name_prefix:
            return [(0, len(self.entries))]
        return [
            (
                bisect.bisect_left(self.names, kind + name_prefix),
                bisect.bisect_left(self.names, kind + name_prefix + "\x7f"),  # keys are ASCII
            )
            for kind in "01"
        ]

    def page(self, number: int, size: int, name_prefix: str = "") -> Page:
        """Page `number` (from 1, clamped) of the matching children: `size` rows at most,
        sliced out of the index without looking at the other rows."""
        runs = self.runs(name_prefix)
        total = sum(high - low for low, high in runs)
        pages = max(1, -(-total // size))
        number = min(max(number, 1), pages)
        skip, rows = (number - 1) * size, list[Entry]()
        for low, high in runs:
            if low + skip >= high:
                skip -= high - low
                continue
            first, skip = low + skip, 0
            rows.extend(self.entries[first : min(high, first + size - len(rows))])
            if len(rows) >= size:
                break
        return Page(rows, number, pages, total)


@dataclass(frozen=True)
class Page:
    rows: list[Entry]
    number: int
    pages: int
    total: int  # children matching the filter


class Listings:
    """Folder indexes by prefix, each kept `ttl` seconds, at most `keep` of them (the
    least recently used goes first); `forget()` after the console changes a key."""

    def __init__(
        self,
        lister: Callable[[str], Sequence[ObjectStat]],
        *,
        ttl: float = 30.0,
        keep: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lister = lister
        self._ttl = ttl
        self._keep = keep
        self._clock = clock
        self._lock = threading.Lock()
        self._indexes: OrderedDict[str, FolderIndex] = OrderedDict()

    def index(self, prefix: str, *, fresh: bool = False) -> FolderIndex:
        with self._lock:
            found = self._indexes.get(prefix)
            if found is not None and not fresh and self._clock() - found.made_at < self._ttl:
                self._indexes.move_to_end(prefix)
                return found
        made = FolderIndex.build(prefix, self._lister(prefix), self._clock())
        with self._lock:
            self._indexes[prefix] = made
            self._indexes.move_to_end(prefix)
            while len(self._indexes) > self._keep:
                self._indexes.popitem(last=False)
        return made

    def forget(self) -> None:
        with self._lock:
            self._indexes.clear()


END = "\U0010ffff"  # sorts after every character a key may hold: past a folder's keys
PageLister = Callable[..., Sequence[ObjectStat]]  # ObjectStore.list_page


@dataclass(frozen=True)
class Paged:
    """One page of a folder's children in key order, and where the next one starts."""

    rows: list[Entry]
    after: str | None  # None: this is the last page


def page_after(
    list_page: PageLister, prefix: str, name_filter: str, after: str, size: int
) -> Paged:
    """The `size` children of `prefix` (names starting with `name_filter`) that follow
    the key `after`, from a paged listing: a sub-folder is one row (its keys are skipped,
    never counted), and nothing past the page is listed."""
    rows: list[Entry] = []
    cursor = after
    while True:
        # One more than a page: whether a next page exists, without listing again.
        stats = list_page(prefix + name_filter, start_after=cursor or None, limit=size + 1)
        for stat in stats:
            if stat.key <= cursor:
                continue  # in a sub-folder already shown
            if len(rows) >= size:
                return Paged(rows, cursor)
            rest = stat.key[len(prefix) :]
            cut = rest.find("/")
            if cut < 0:
                rows.append(
                    Entry(rest, stat.key, False, stat.size, 1, stat.etag, stat.last_modified)
                )
                cursor = stat.key
            else:
                folder = prefix + rest[: cut + 1]
                rows.append(Entry(rest[:cut], folder, True, 0, 0))
                cursor = folder + END
        if len(stats) <= size:
            return Paged(rows, None)


def parent_of(prefix: str) -> str:
    """The folder above a folder prefix ("a/b/" -> "a/", "a/" -> "")."""
    trimmed = prefix.rstrip("/")
    cut = trimmed.rfind("/")
    return "" if cut < 0 else trimmed[: cut + 1]
