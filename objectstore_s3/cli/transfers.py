"""`cp`, `mv` and `sync`: files and folders to keys and prefixes and back, as `aws s3`
does them. An argument names a key or a prefix with the `os://` scheme (`os://123/model`,
`os://123/storage/`, `os://` for every key); anything else is a local path. A folder's
files go under the prefix by their relative names (`storage/a/b.bin` with
`os://123/storage/` is `123/storage/a/b.bin`), and back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from objectstore_s3.errors import InvalidKeyError
from objectstore_s3.keys import normalize_key
from objectstore_s3.store import ObjectStat, ObjectStore

from . import actions
from .actions import SCHEME, Step
from .session import open_store
from .syncplan import Entry, SyncPlan, plan
from .terminal import USAGE, JsonFlag, command, error, fail, normalized_key

__all__ = ["transfers_app"]

transfers_app = typer.Typer()

_CHUNK = 1024 * 1024
SourceArgument = Annotated[
    str, typer.Argument(metavar="SRC", help="A local path, or os://KEY (os://PREFIX/).")
]
TargetArgument = Annotated[
    str, typer.Argument(metavar="DST", help="A local path, or os://KEY (os://PREFIX/).")
]
RecursiveFlag = Annotated[
    bool, typer.Option("--recursive", "-r", help="A folder's files, or every key under a prefix.")
]


@dataclass(frozen=True)
class Place:
    """A command line argument: a key or prefix (`key`, the text after os://) or a path."""

    text: str
    key: str | None

    @staticmethod
    def of(text: str) -> Place:
        return Place(text, text[len(SCHEME) :] if text.startswith(SCHEME) else None)

    @property
    def path(self) -> Path:
        return Path(self.text)

    @property
    def is_folder(self) -> bool:
        """Names a folder or a prefix: ends with a separator, or is an existing folder."""
        if self.key is not None:
            return self.key == "" or self.key.endswith("/")
        return self.text.endswith(("/", "\\")) or self.path.is_dir()


def prefix_of(text: str, debug: bool) -> str:
    """A prefix as the store spells it, ending with '/' ("" for every key)."""
    body = text.rstrip("/\\")
    return normalized_key(body, debug) + "/" if body else ""


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _entry(stat: ObjectStat) -> Entry:
    when = stat.last_modified.timestamp() if stat.last_modified else None
    return Entry(stat.size, (stat.etag or "").strip('"') or None, when)


def _objects(store: ObjectStore, prefix: str) -> dict[str, ObjectStat]:
    """The objects under a prefix by their names relative to it."""
    return {stat.key[len(prefix) :]: stat for stat in store.list_objects(prefix)}


class LocalFiles:
    """A folder's files by relative name. With a `prefix` (an upload), names that are no
    key under it (a character keys do not allow, a name the key rules would change) are
    rejected, each said on one line."""

    def __init__(self, root: Path, prefix: str | None) -> None:
        self.root = root
        self.paths: dict[str, Path] = {}
        self.rejected: list[dict[str, Any]] = []
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        for path in files:
            name = path.relative_to(root).as_posix()
            if prefix is None:
                self.paths[name] = path
                continue
            try:
                valid = normalize_key(prefix + name) == prefix + name
            except InvalidKeyError:
                valid = False
            if valid:
                self.paths[name] = path
            else:
                self.rejected.append(
                    {"action": "upload", "source": str(path), "target": None, "error": "no key"}
                )
                error(f"cannot upload {path}: '{prefix + name}' is not a valid key (see `ls`)")

    def entries(self) -> dict[str, Entry]:
        found = {}
        for name, path in self.paths.items():
            stat = path.stat()
            found[name] = Entry(stat.st_size, None, stat.st_mtime)
        return found


def _single(store: ObjectStore, source: Place, target: Place, move: bool, debug: bool) -> Step:
    """One file or key to one file or key."""
    if source.key is None:
        if source.path.is_dir():
            fail(f"{source.text} is a folder; add --recursive to copy its files", USAGE)
        if not source.path.is_file():
            fail(f"no such file: {source.text}")
        key = normalized_key(_into(target, source.path.name), debug)
        return actions.upload(store, source.path, key, move=move)
    key = normalized_key(source.key, debug)
    info = store.stat(key)
    name = key.rsplit("/", 1)[-1]
    if target.key is not None:
        destination = normalized_key(_into(target, name), debug)
        return actions.copy(store, key, destination, size=info.size, move=move)
    path = target.path / name if target.is_folder else target.path
    return actions.download(store, key, path, size=info.size, mtime=_entry(info).mtime, move=move)


def _into(target: Place, name: str) -> str:
    """The key a file called `name` gets at the target (a prefix: under it)."""
    assert target.key is not None
    return target.key + name if target.is_folder else target.key


def _recursive(
    store: ObjectStore, source: Place, target: Place, move: bool, debug: bool
) -> tuple[list[Step], list[dict[str, Any]]]:
    """Every file of a folder, or every key under a prefix, to a folder or a prefix."""
    if source.key is None:
        if not source.path.is_dir():
            fail(f"no such folder: {source.text}")
        assert target.key is not None
        prefix = prefix_of(target.key, debug)
        files = LocalFiles(source.path, prefix)
        steps = [
            actions.upload(store, path, prefix + name, move=move)
            for name, path in files.paths.items()
        ]
        return steps, files.rejected
    start = prefix_of(source.key, debug)
    objects = _objects(store, start)
    if target.key is not None:
        prefix = prefix_of(target.key, debug)
        return [
            actions.copy(store, stat.key, prefix + name, size=stat.size, move=move)
            for name, stat in objects.items()
        ], []
    return [
        actions.download(
            store, s.key, target.path / n, size=s.size, mtime=_entry(s).mtime, move=move
        )
        for n, s in objects.items()
    ], []


def _transfer(
    ctx: typer.Context, source: str, target: str, recursive: bool, as_json: bool, move: bool
) -> None:
    debug = ctx.obj.debug
    src, dst = Place.of(source), Place.of(target)
    if src.key is None and dst.key is None:
        fail(f"name a key with {SCHEME}, e.g. {SCHEME}123/model (both are local paths)", USAGE)
    with open_store(ctx) as store:
        if recursive:
            steps, rejected = _recursive(store, src, dst, move, debug)
        else:
            steps, rejected = [_single(store, src, dst, move, debug)], []
        actions.run(
            [steps],
            workers=store.settings.max_concurrency,
            label="mv" if move else "cp",
            as_json=as_json,
            rejected=rejected,
            debug=ctx.obj.debug,
        )


def _transfer_command(name: str, summary: str, short: str, *example_lines: str) -> None:
    """`cp` and `mv`: the same arguments; mv deletes each source once it is copied."""

    def transfer(
        ctx: typer.Context,
        source: SourceArgument,
        target: TargetArgument,
        recursive: RecursiveFlag = False,
        as_json: JsonFlag = False,
    ) -> None:
        _transfer(ctx, source, target, recursive, as_json, move=name == "mv")

    transfer.__doc__ = summary
    command(transfers_app, name, *example_lines, short_help=short)(transfer)


_transfer_command(
    "cp",
    "Copy files to keys, keys to files, or keys to keys (on the server).",
    "Copy files to keys (os://KEY) and back, or key to key.",
    "objectstore-s3 cp model.bin os://123/model",
    "objectstore-s3 cp os://123/model model.bin",
    "objectstore-s3 cp --recursive storage/ os://123/storage/",
    "objectstore-s3 cp os://123/model os://123/model-backup",
)
_transfer_command(
    "mv",
    "Move: copy, then delete the source once its copy is made.",
    "Move files to keys and back, or key to key.",
    "objectstore-s3 mv results.csv os://123/results.csv",
    "objectstore-s3 mv os://123/old-name os://123/new-name",
    "objectstore-s3 mv --recursive os://123/logs/ logs/",
)


@command(
    transfers_app,
    "sync",
    "objectstore-s3 sync storage/ os://123/storage/",
    "objectstore-s3 sync os://123/storage/ storage/ --delete",
    "objectstore-s3 sync storage/ os://123/storage/ --dry-run --json",
    short_help="Transfer what differs between a folder and a prefix.",
)
def sync(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="SRC", help="A folder, or os://PREFIX/.")],
    target: Annotated[str, typer.Argument(metavar="DST", help="os://PREFIX/, or a folder.")],
    delete: Annotated[
        bool, typer.Option("--delete", help="Delete what the source does not have.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be done.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Make a prefix hold what a folder holds, or a folder what a prefix holds: only
    what differs (size, MD5; the time where an ETag is no MD5) is transferred."""
    src, dst = Place.of(source), Place.of(target)
    if (src.key is None) == (dst.key is None):
        fail(f"sync a folder and a prefix, e.g. sync storage/ {SCHEME}123/storage/", USAGE)
    if src.key is None and not src.path.is_dir():
        fail(f"no such folder: {src.text}")
    with open_store(ctx) as store:
        if src.key is None:
            found, phases, rejected = _sync_up(
                store, src.path, prefix_of(str(dst.key), ctx.obj.debug), delete
            )
        else:
            found, phases, rejected = _sync_down(
                store, prefix_of(src.key, ctx.obj.debug), dst.path, delete
            )
        actions.run(
            phases,
            workers=store.settings.max_concurrency,
            label="sync",
            as_json=as_json,
            dry_run=dry_run,
            unchanged=found.unchanged,
            rejected=rejected,
            debug=ctx.obj.debug,
        )


def _sync_up(
    store: ObjectStore, root: Path, prefix: str, delete: bool
) -> tuple[SyncPlan, list[list[Step]], list[dict[str, Any]]]:
    """Upload what the prefix lacks or holds differently; delete what the folder lacks."""
    files = LocalFiles(root, prefix)
    objects = _objects(store, prefix)
    found = plan(
        files.entries(),
        {name: _entry(stat) for name, stat in objects.items()},
        delete=delete,
        digest=lambda name: _md5(files.paths[name]),
    )
    transfers = [actions.upload(store, files.paths[name], prefix + name) for name in found.transfer]
    deletions = [actions.delete_key(store, prefix + name) for name in found.delete]
    return found, [transfers, deletions], files.rejected


def _sync_down(
    store: ObjectStore, prefix: str, root: Path, delete: bool
) -> tuple[SyncPlan, list[list[Step]], list[dict[str, Any]]]:
    """Download what the folder lacks or holds differently; delete what the prefix lacks."""
    objects = _objects(store, prefix)
    local = LocalFiles(root, None)
    found = plan(
        {name: _entry(stat) for name, stat in objects.items()},
        local.entries(),
        delete=delete,
        digest=lambda name: _md5(local.paths[name]),
    )
    transfers = [
        actions.download(
            store,
            prefix + name,
            root / name,
            size=objects[name].size,
            mtime=_entry(objects[name]).mtime,
        )
        for name in found.transfer
    ]
    deletions = [actions.delete_file(local.paths[name]) for name in found.delete]
    return found, [transfers, deletions], []
