"""File transfers, shared by the transports: small files whole (`read_whole`,
`save_whole`), large ones in parts: parallel ranged downloads and multipart uploads,
with bounded memory (`concurrency` parts in flight).

The algorithms are written against `RangeClient` and `PartClient`, a handful of
part-level requests each transport implements (and retries) itself. Downloads pin the
object's version with `If-Match`, so a file is never stitched from two versions.
Uploads compute each part's MD5 (the multipart ETag, to resolve a lost answer), ask
`unchanged()` before completing, and abort the upload on any failure, so nothing
partial is ever published.

No part is held in memory whole: a downloaded part is written to the file piece by piece
as it arrives, and an uploaded part is read from the file as it is sent (`FileWindow`),
so memory stays near `concurrency` x 1 MiB whatever the part size.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Executor, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Protocol

from objectstore_s3.errors import PreconditionFailedError
from objectstore_s3.fs import write_private

from .base import ObjectData, ObjectInfo, Progress, multipart_etag

__all__ = [
    "PIECE",
    "FileWindow",
    "PartClient",
    "RangeClient",
    "TransferPool",
    "download_parts",
    "read_whole",
    "save_whole",
    "upload_parts",
]

PIECE = 1024 * 1024  # what is read or written at a time within a part


class RangeClient(Protocol):
    """The one request of a download in parts."""

    def get_range_into(
        self, key: str, start: int, end: int, if_match: str, fd: int, version_id: str | None = None
    ) -> int:
        """Write bytes start..end-1 of the object at ETag `if_match` (of that version, if
        given) into `fd` at their own offsets as they arrive (an attempt that is retried
        rewrites them); returns the offset after the last byte written."""
        ...


class PartClient(Protocol):
    """The requests of a multipart upload."""

    def create_upload(self, key: str) -> str: ...

    def upload_part(self, key: str, upload_id: str, number: int, body: FileWindow) -> str:
        """Upload one part (rewind `body` before each attempt); returns its ETag."""
        ...

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        *,
        if_match: str | None,
        if_none_match: str | None,
        expected_etag: str,
        size: int,
    ) -> ObjectInfo: ...

    def abort_upload_id(self, key: str, upload_id: str) -> None: ...


def read_whole(path: Path, unchanged: Callable[[], bool] | None) -> bytes:
    """A small file's bytes for one PUT; refused (412) if `unchanged()` says the file was
    rewritten meanwhile, so that it is never published half old, half new."""
    data = path.read_bytes()
    if unchanged is not None and not unchanged():
        raise PreconditionFailedError(f"{path} changed while it was uploaded")
    return data


def save_whole(data: ObjectData, path: Path, progress: Progress | None) -> ObjectInfo:
    """Write a small object's bytes to `path` (created 0600) and report them."""
    write_private(path, data.body)
    if progress is not None:
        progress(len(data.body))
    return data.info


class TransferPool:
    """The threads that move one connection's parts: made on first use, released by
    `close` (and made again if a transfer follows)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._size, "objectstore-transfer")
            return self._pool

    def close(self) -> None:
        """Wait for the parts in flight, then let the threads go (idempotent)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def write_at(fd: int, piece: bytes | memoryview, at: int) -> int:
    """Write all of `piece` at offset `at`; returns the offset after it."""
    view = memoryview(piece)
    while view:
        written = os.pwrite(fd, view, at)
        view, at = view[written:], at + written
    return at


class FileWindow(io.RawIOBase):
    """`length` bytes of an open file from `offset`, readable and seekable: a part that is
    read from the file as it is sent, not held in memory."""

    def __init__(self, fd: int, offset: int, length: int) -> None:
        super().__init__()
        self._fd, self._offset, self._length, self._at = fd, offset, length, 0

    def __len__(self) -> int:
        return self._length

    def close(self) -> None:
        """Nothing to release (the fd is the caller's), and a window must stay readable:
        each attempt wraps it in a new buffered reader, which closes its raw stream when
        it is collected."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._length}[whence]
        self._at = max(0, min(self._length, base + offset))
        return self._at

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._length - self._at)
        if wanted <= 0:
            return 0
        data = os.pread(self._fd, wanted, self._offset + self._at)
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)

    def digest(self) -> bytes:
        """The MD5 of the window (read in pieces; the position is left at the start)."""
        md5 = hashlib.md5(usedforsecurity=False)
        self.seek(0)
        while piece := self.read(PIECE):
            md5.update(piece)
        self.seek(0)
        return md5.digest()


def download_parts(
    client: RangeClient,
    info: ObjectInfo,
    path: Path,
    *,
    chunk: int,
    pool: Executor,
    progress: Progress | None = None,
    version_id: str | None = None,
) -> None:
    """Write the object described by `info` (that version of it, if given) into `path`
    (created 0600) in ranged parts."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, info.size)

        def fetch(start: int) -> None:
            end = min(start + chunk, info.size)
            if client.get_range_into(info.key, start, end, info.etag, fd, version_id) != end:
                raise PreconditionFailedError(f"'{info.key}' changed during the download")
            if progress is not None:
                progress(end - start)

        _run_all(pool, fetch, list(range(0, info.size, chunk)))
    finally:
        os.close(fd)


def upload_parts(
    client: PartClient,
    key: str,
    path: Path,
    *,
    chunk: int,
    pool: Executor,
    if_match: str | None,
    if_none_match: str | None,
    unchanged: Callable[[], bool] | None = None,
    progress: Progress | None = None,
) -> ObjectInfo:
    """Upload the file at `path` as a multipart upload; abort it on any failure."""
    size = path.stat().st_size
    upload_id = client.create_upload(key)
    digests: dict[int, bytes] = {}
    etags: dict[int, str] = {}
    fd = os.open(path, os.O_RDONLY)
    try:

        def send(number: int) -> None:
            start = (number - 1) * chunk
            body = FileWindow(fd, start, max(0, min(chunk, size - start)))
            digests[number] = body.digest()
            etags[number] = client.upload_part(key, upload_id, number, body)
            if progress is not None:
                progress(len(body))

        _run_all(pool, send, list(range(1, max(1, -(-size // chunk)) + 1)))
        if unchanged is not None and not unchanged():
            raise PreconditionFailedError(f"{path} changed while it was uploaded")
        numbers = sorted(etags)
        return client.complete_upload(
            key,
            upload_id,
            [(number, etags[number]) for number in numbers],
            if_match=if_match,
            if_none_match=if_none_match,
            expected_etag=multipart_etag(digests[number] for number in numbers),
            size=size,
        )
    except BaseException:
        client.abort_upload_id(key, upload_id)
        raise
    finally:
        os.close(fd)


def _run_all(pool: Executor, task: Callable[[int], None], items: list[int]) -> None:
    """Run `task` over `items` in the pool. On the first error the parts not started are
    cancelled, and it is raised once the running ones have finished."""
    futures: list[Future[None]] = [pool.submit(task, item) for item in items]
    done, pending = wait(futures, return_when=FIRST_EXCEPTION)
    for future in pending:
        future.cancel()
    wait(pending)
    errors = [error for future in done if (error := future.exception()) is not None]
    if errors:
        raise errors[0]
