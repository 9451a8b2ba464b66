"""Large transfers in parts, shared by the S3 transports: parallel ranged downloads and
multipart uploads, with bounded memory (`concurrency` parts in flight).

The algorithms are written against `PartClient`, a handful of part-level requests each
transport implements (and retries) itself. Downloads pin the object's version with
`If-Match`, so a file is never stitched from two versions. Uploads compute each part's
MD5 (the multipart ETag, to resolve a lost answer), ask `unchanged()` before completing,
and abort the upload on any failure, so nothing partial is ever published.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Executor, Future, wait
from pathlib import Path
from typing import Protocol

from .backend import ObjectInfo, Progress, multipart_etag
from .errors import PreconditionFailedError

__all__ = ["PartClient", "download_parts", "upload_parts"]


class PartClient(Protocol):
    def get_range(self, key: str, start: int, end: int, if_match: str) -> bytes:
        """Bytes start..end (inclusive) of the object at ETag `if_match`."""
        ...

    def create_upload(self, key: str) -> str: ...

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        """Upload one part; returns its ETag."""
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


def download_parts(
    client: PartClient,
    info: ObjectInfo,
    path: Path,
    *,
    chunk: int,
    pool: Executor,
    progress: Progress | None = None,
) -> None:
    """Write the object described by `info` into `path` (created 0600) in ranged parts."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, info.size)

        def fetch(start: int) -> None:
            end = min(start + chunk, info.size) - 1
            data = client.get_range(info.key, start, end, info.etag)
            if len(data) != end - start + 1:
                raise PreconditionFailedError(f"'{info.key}' changed during the download")
            os.pwrite(fd, data, start)
            if progress is not None:
                progress(len(data))

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
            data = os.pread(fd, chunk, (number - 1) * chunk)
            digests[number] = hashlib.md5(data, usedforsecurity=False).digest()
            etags[number] = client.upload_part(key, upload_id, number, data)
            if progress is not None:
                progress(len(data))

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
