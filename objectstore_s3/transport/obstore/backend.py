"""The obstore transport (the `fast` extra): a `Backend` whose requests go through
obstore's Rust HTTP client, about half the time per request of boto3's.

Through obstore: HEAD, GET (If-None-Match; ranged parts pinned with If-Match), PUT of
bodies up to 1 MiB (If-None-Match: * as mode "create", If-Match as mode {"e_tag": ...}),
unconditional DELETE, and listings. Through boto3 (the boto3 transport, on the same
bucket, made on first use), what obstore cannot do: DELETE with If-Match (obstore's
delete takes no conditions), multipart uploads (obstore cannot condition the completion,
nor ask `unchanged()` before it), larger PUT bodies (see client.py on timeouts),
ListMultipartUploads, bucket creation and the server's clock (obstore shows no Date);
and versions (whole reads of a version, whose delete marker only boto3's answer tells;
ranged parts of one go through obstore), copies (obstore's cannot condition them) and
presigned URLs.
A process that only reads never makes the boto3 side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import obstore

from objectstore_s3.errors import KeyNotFoundError
from objectstore_s3.transport.base import (
    ObjectData,
    ObjectInfo,
    StaleUpload,
    VersionInfo,
    content_etag,
)
from objectstore_s3.transport.failures import Failure, Retries
from objectstore_s3.transport.remote import RemoteBackend
from objectstore_s3.transport.transfer import PartClient, write_at

from .client import APPLIED, SMALL_BODY, ObstoreConnection
from .errors import classify

if TYPE_CHECKING:
    from obstore import ObjectMeta, PutMode
    from obstore.store import S3Store

    from objectstore_s3.transport.boto3.backend import S3Backend

__all__ = ["ObstoreBackend"]

_LIST_CHUNK = 1000  # listing entries per call into obstore (one S3 page)
_PIECE = 1024 * 1024  # a download's parts reach the file in pieces of about this size


class ObstoreBackend(RemoteBackend[ObstoreConnection]):
    """A `Backend` on one bucket of an S3 server through obstore, scoped to a key prefix."""

    _scoped_boto: S3Backend | None = None  # made on first use (`_boto`)

    _connection_class = ObstoreConnection

    @property
    def _store(self) -> S3Store:
        return self._c.store

    def on_request(self, callback: Callable[[str, str | None], None]) -> None:
        """See S3Backend.on_request (the boto3 side's requests are counted too)."""
        self._c.on_request(self.prefix, callback)

    @property
    def _boto(self) -> S3Backend:
        """The boto3 transport on this scope, for the requests obstore cannot make."""
        if self._scoped_boto is None:
            self._scoped_boto = self._c.boto.scoped(self.prefix)
        return self._scoped_boto

    def multipart(self) -> PartClient:
        return self._boto.multipart()  # multipart, through boto3 (module docstring)

    # -- objects -------------------------------------------------------------------------

    def head(self, key: str, *, version_id: str | None = None) -> ObjectInfo | None:
        if version_id is not None:
            return self._boto.head(key, version_id=version_id)  # obstore's head takes none
        path = self.prefix + key
        try:
            meta = self._c.call(
                "stat",
                key,
                lambda: obstore.head(self._store, path),
                api="HeadObject",
                target=path,
            )
        except KeyNotFoundError:
            return None
        return _info(key, meta)

    def get(
        self, key: str, *, if_none_match: str | None = None, version_id: str | None = None
    ) -> ObjectData | None:
        if version_id is not None:
            # A version's answers (a delete marker's 405) are told apart on the boto3 side.
            return self._boto.get(key, if_none_match=if_none_match, version_id=version_id)
        path = self.prefix + key
        options: Any = {"if_none_match": if_none_match} if if_none_match else None

        def request() -> tuple[ObjectMeta, bytes] | None:
            try:
                result = obstore.get(self._store, path, options=options)
                return result.meta, bytes(result.bytes())  # inside the attempt: a cut retries
            except Exception as exc:
                if if_none_match and classify(exc) is Failure.NOT_MODIFIED:
                    return None
                raise

        found = self._c.call("read", key, request, api="GetObject", target=path)
        if found is None:
            return None
        meta, body = found
        return ObjectData(body, _info(key, meta, len(body)))

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        etag: str | None = None,
    ) -> ObjectInfo:
        mode = _mode(if_match, if_none_match)
        if mode is None or len(data) > SMALL_BODY:
            return self._boto.put(
                key, data, if_match=if_match, if_none_match=if_none_match, etag=etag
            )
        path = self.prefix + key
        expected = None if mode == "overwrite" else (etag or content_etag(data))
        retries = Retries(self._c.attempts, expected)
        result = self._c.call(
            "write",
            key,
            lambda: obstore.put(self._store, path, data, mode=mode, use_multipart=False),
            api="PutObject",
            target=path,
            written=expected,
            verify=lambda: self.landed(key, expected),
            retries=retries,
        )
        repeat = retries.repeats(result is APPLIED)
        if result is APPLIED:
            return replace(self.applied(key, expected), repeats=repeat)
        when = self._c.known_time()
        answered = result["e_tag"] or etag or content_etag(data)
        return ObjectInfo(
            key, len(data), answered, when[0] if when else None, repeat, result.get("version")
        )

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        if if_match:
            self._boto.delete(key, if_match=if_match)  # obstore's delete has no conditions
            return
        path = self.prefix + key
        self._c.call(
            "delete",
            key,
            lambda: obstore.delete(self._store, path),
            api="DeleteObject",
            target=path,
        )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # obstore lists by path segment ("a/b" lists "a/b/..." only, never "a/bc"), so the
        # folder above the prefix is listed from just below it, and names are filtered.
        full = self.prefix + prefix
        folder = full[: full.rfind("/") + 1]
        start = _just_below(full) if len(full) > len(folder) else None
        cut = len(self.prefix)
        stream: Any = None
        seen: set[str] = set()  # what was yielded, skipped if a failed listing starts over

        def page() -> Sequence[ObjectMeta] | None:
            nonlocal stream
            try:
                if stream is None:
                    # A retry starts over rather than after the last name: on SeaweedFS a
                    # start-after "a" also skips "a/b", and servers order names differently.
                    stream = obstore.list(
                        self._store, folder or None, offset=start, chunk_size=_LIST_CHUNK
                    )
                return next(stream, None)
            except BaseException:
                stream = None
                raise

        if not _listable(folder):
            return  # an empty or dot segment: no object has such a name
        request: str | None = "ListObjectsV2"
        while True:
            chunk = self._c.call("list", prefix or "/", page, api=request, target=None)
            if chunk is None:
                return
            # A short chunk was the last page (S3 pages hold 1000): the next call into the
            # stream only ends it, no request (this only keeps `on_request` counts true).
            request = "ListObjectsV2" if len(chunk) >= _LIST_CHUNK else None
            for meta in chunk:  # _info inlined: this loop is most of a listing's own time
                name = meta["path"]
                if name.startswith(full) and name not in seen:
                    seen.add(name)
                    etag = meta["e_tag"] or '""'
                    yield ObjectInfo(
                        name[cut:],
                        meta["size"],
                        etag if etag[0] == '"' else f'"{etag}"',
                        meta["last_modified"].timestamp(),
                    )

    # -- copies, versions, URLs: through boto3 (module docstring) ---------------------------

    def copy(
        self,
        source: str,
        key: str,
        *,
        version_id: str | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> ObjectInfo:
        return self._boto.copy(
            source, key, version_id=version_id, if_match=if_match, if_none_match=if_none_match
        )

    def versioning(self) -> str:
        return self._boto.versioning()

    def set_versioning(self, enabled: bool) -> None:
        self._boto.set_versioning(enabled)

    def list_versions(self, prefix: str = "") -> Iterator[VersionInfo]:
        return self._boto.list_versions(prefix)

    def delete_version(self, key: str, version_id: str) -> None:
        self._boto.delete_version(key, version_id)

    def presign(self, key: str, expires: float) -> str:
        return self._boto.presign(key, expires)

    # -- downloads in parts (transfer.RangeClient) ----------------------------------------

    def get_range_into(
        self, key: str, start: int, end: int, if_match: str, fd: int, version_id: str | None = None
    ) -> int:
        """One ranged part (pinned with If-Match) streamed to the file in pieces as it
        arrives. obstore fetches every part in flight at once, and Rust's
        buffers freed on another thread stay with that thread's allocator arena, so whole
        parts would also raise the peak of a later upload in the same process."""
        full = self.prefix + key
        options: Any = {"if_match": if_match, "range": (start, end)}  # end excluded
        if version_id is not None:
            options["version"] = version_id

        def request() -> int:
            at = start
            result = obstore.get(self._store, full, options=options)
            for piece in result.stream(min_chunk_size=_PIECE):
                at = write_at(fd, piece, at)
            return at

        written: int = self._c.call("download", key, request, api="GetObject", target=full)
        return written

    # -- clock, stale uploads, bucket ------------------------------------------------------

    def server_time(self) -> tuple[float, float] | None:
        return self._c.server_time()

    def stale_uploads(self, older_than: float) -> Iterable[StaleUpload]:
        return self._boto.stale_uploads(older_than)

    def abort_upload(self, upload: StaleUpload) -> None:
        self._boto.abort_upload(upload)

    def create_bucket(self, *, versioned: bool = False) -> None:
        self._c.boto.create_bucket(versioned=versioned)


def _info(key: str, meta: ObjectMeta, size: int | None = None) -> ObjectInfo:
    etag = meta["e_tag"] or ""
    if etag[:1] != '"':  # some servers list ETags unquoted (rclone); HEAD quotes them
        etag = f'"{etag}"'
    return ObjectInfo(
        key,
        meta["size"] if size is None else size,
        etag,
        meta["last_modified"].timestamp(),
        version_id=meta.get("version"),
    )


def _mode(if_match: str | None, if_none_match: str | None) -> PutMode | None:
    """obstore's put mode for the preconditions; None: none expresses them (boto3's)."""
    if if_match and if_none_match:
        return None
    if if_none_match:
        return "create" if if_none_match == "*" else None
    return {"e_tag": if_match} if if_match else "overwrite"


def _just_below(name: str) -> str | None:
    """A start-after that lists `name` and every name it prefixes, skipping most before
    (its last character one lower); None where that would not be a valid path."""
    lower = chr(ord(name[-1]) - 1)
    return name[:-1] + lower if lower.isascii() and lower.isalnum() else None


def _listable(folder: str) -> bool:
    segments = folder.split("/")[:-1]
    return all(segment not in ("", ".", "..") for segment in segments)
