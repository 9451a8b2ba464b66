"""An in-memory bucket shared by processes, and a backend wrapper that interrupts calls.

`BucketServer` serves the test process's `MemoryBucket` (with the model's clock) on a Unix
socket in a private folder, authenticated by a random key, one thread per connection;
`SharedBackend` is the worker side: a `Backend` that forwards each request and keeps
S3's semantics by running `MemoryBackend` on the server. A Listener (not inherited
socketpairs) so that a forked child, like any process, connects anew instead of writing on
its parent's connection. `InterruptingBackend` wraps any backend (shared or S3) and, when
armed, raises KeyboardInterrupt before or after the n-th request of the next call.
Used by the multi-process model test (tests/model/test_processes.py).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

from objectstore_s3.errors import KeyNotFoundError
from objectstore_s3.transport.base import (
    Backend,
    ObjectData,
    ObjectInfo,
    Progress,
    StaleUpload,
    VersionInfo,
)
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket
from objectstore_s3.transport.transfer import read_whole, save_whole

_SERVED = {"head", "get", "put", "delete", "list", "server_time", "stale_uploads"}
_SERVED |= {"abort_upload", "create_bucket", "copy", "versioning", "set_versioning"}
_SERVED |= {"list_versions", "delete_version", "presign"}


def _pack_error(exc: BaseException) -> tuple[str, str, str]:
    """An error as (module, class, argument): KeyNotFoundError's argument is its key."""
    argument = exc.key if isinstance(exc, KeyNotFoundError) else str(exc)
    return type(exc).__module__, type(exc).__qualname__, str(argument)


def _unpack_error(packed: tuple[str, str, str]) -> BaseException:
    import importlib

    module, name, argument = packed
    cls = getattr(importlib.import_module(module), name)
    return cls(argument)  # type: ignore[no-any-return]


class BucketServer:
    """Serves `bucket` (swappable between examples) to the workers' `SharedBackend`s."""

    def __init__(self, bucket: MemoryBucket) -> None:
        self.bucket = bucket
        self._folder = Path(tempfile.mkdtemp(prefix="bucket-"))  # 0700: ours only
        self.address = str(self._folder / "bucket.sock")
        self.authkey = secrets.token_bytes(32)
        self._listener = Listener(self.address, family="AF_UNIX", authkey=self.authkey)
        self._connections: list[Connection] = []
        self._closed = False
        threading.Thread(target=self._accept, name="bucket-server", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                connection = self._listener.accept()
            except (OSError, EOFError):
                if self._closed:
                    return
                continue  # a client that failed authentication, or went away at once
            self._connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: Connection) -> None:
        with connection:
            while True:
                try:
                    prefix, method, args, kwargs = connection.recv()
                except (EOFError, OSError):
                    return
                try:
                    if method not in _SERVED:
                        raise ValueError(f"not a served method: {method}")
                    result = getattr(MemoryBackend(self.bucket, prefix), method)(*args, **kwargs)
                    if method in ("list", "stale_uploads", "list_versions"):
                        result = list(result)
                    reply: tuple[str, Any] = ("ok", result)
                except Exception as exc:
                    reply = ("error", _pack_error(exc))
                try:
                    connection.send(reply)
                except OSError:
                    return

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for connection in self._connections:
            connection.close()
        Path(self.address).unlink(missing_ok=True)
        os.rmdir(self._folder)


class SharedBackend:
    """The worker's side of a `BucketServer`: one connection per process, requests in turn."""

    def __init__(self, address: str, authkey: bytes, prefix: str = "") -> None:
        self.address = address
        self.authkey = authkey
        self.prefix = prefix
        self._link: dict[str, Any] = {}  # shared by every scope: pid, connection, lock

    @property
    def name(self) -> str:
        return "shared in-memory bucket"

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        link = self._link
        if link.get("pid") != os.getpid():  # a forked child connects on its own
            link.update(
                pid=os.getpid(),
                lock=threading.Lock(),
                connection=Client(self.address, family="AF_UNIX", authkey=self.authkey),
            )
        with link["lock"]:
            link["connection"].send((self.prefix, method, args, kwargs))
            status, result = link["connection"].recv()
        if status == "error":
            raise _unpack_error(result)
        return result

    def scoped(self, prefix: str) -> SharedBackend:
        scoped = SharedBackend(self.address, self.authkey, self.prefix + prefix)
        scoped._link = self._link
        return scoped

    def head(self, key: str) -> ObjectInfo | None:
        return self._call("head", key)  # type: ignore[no-any-return]

    def get(
        self, key: str, *, if_none_match: str | None = None, version_id: str | None = None
    ) -> ObjectData | None:
        return self._call(  # type: ignore[no-any-return]
            "get", key, if_none_match=if_none_match, version_id=version_id
        )

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        etag: str | None = None,
    ) -> ObjectInfo:
        return self._call(  # type: ignore[no-any-return]
            "put", key, bytes(data), if_match=if_match, if_none_match=if_none_match
        )

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        self._call("delete", key, if_match=if_match)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return iter(self._call("list", prefix))

    def copy(
        self,
        source: str,
        key: str,
        *,
        version_id: str | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> ObjectInfo:
        return self._call(  # type: ignore[no-any-return]
            "copy",
            source,
            key,
            version_id=version_id,
            if_match=if_match,
            if_none_match=if_none_match,
        )

    def versioning(self) -> str:
        return self._call("versioning")  # type: ignore[no-any-return]

    def set_versioning(self, enabled: bool) -> None:
        self._call("set_versioning", enabled)

    def list_versions(self, prefix: str = "") -> Iterator[VersionInfo]:
        return iter(self._call("list_versions", prefix))

    def delete_version(self, key: str, version_id: str) -> None:
        self._call("delete_version", key, version_id)

    def presign(self, key: str, expires: float) -> str:
        return self._call("presign", key, expires)  # type: ignore[no-any-return]

    def download(
        self,
        key: str,
        path: Path,
        progress: Progress | None = None,
        *,
        version_id: str | None = None,
    ) -> ObjectInfo:
        data = self.get(key, version_id=version_id)
        assert data is not None
        return save_whole(data, path, progress)

    def upload(
        self,
        key: str,
        path: Path,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        unchanged: Callable[[], bool] | None = None,
        progress: Progress | None = None,
    ) -> ObjectInfo:
        data = read_whole(path, unchanged)
        if progress is not None:
            progress(len(data))
        return self.put(key, data, if_match=if_match, if_none_match=if_none_match)

    def server_time(self) -> tuple[float, float] | None:
        return self._call("server_time")  # type: ignore[no-any-return]

    def stale_uploads(self, older_than: float) -> Iterable[StaleUpload]:
        return self._call("stale_uploads", older_than)  # type: ignore[no-any-return]

    def abort_upload(self, upload: StaleUpload) -> None:
        self._call("abort_upload", upload)

    def create_bucket(self, *, versioned: bool = False) -> None:
        self._call("create_bucket", versioned=versioned)

    def close(self) -> None:
        """Nothing to release that a later request would not make again."""


# The requests an interrupt may hit (server_time asks nobody).
_REQUESTS = {"head", "get", "put", "delete", "list", "download", "upload", "copy"}
_REQUESTS |= {"versioning", "set_versioning", "list_versions", "delete_version"}


class Interrupter:
    """Armed with (n, stage): the n-th request from now raises KeyboardInterrupt,
    before it is sent or after its answer came. `fired` tells whether it did."""

    def __init__(self) -> None:
        self.armed: tuple[int, str] | None = None
        self.fired: tuple[str, str] | None = None  # (operation, stage)
        self._lock = threading.Lock()

    def arm(self, index: int, stage: str) -> None:
        self.armed, self.fired = (index, stage), None

    def disarm(self) -> None:
        self.armed = None

    def check(self, operation: str, stage: str) -> None:
        with self._lock:
            if self.armed is None:
                return
            index, when = self.armed
            if stage == "before":
                if index > 0:
                    self.armed = (index - 1, when)  # not this request yet
                    return
                if when == "after":
                    self.armed = (-1, when)  # this one, once its answer came
                    return
            elif index != -1:
                return
            self.armed, self.fired = None, (operation, stage)
        raise KeyboardInterrupt(f"injected {stage} {operation}")


class InterruptingBackend:
    """A backend whose requests an `Interrupter` may interrupt."""

    def __init__(self, inner: Backend, interrupter: Interrupter) -> None:
        self.inner = inner
        self.interrupter = interrupter

    @property
    def name(self) -> str:
        return self.inner.name

    def scoped(self, prefix: str) -> InterruptingBackend:
        return InterruptingBackend(self.inner.scoped(prefix), self.interrupter)

    def __getattr__(self, method: str) -> Any:
        target = getattr(self.inner, method)
        if method not in _REQUESTS:
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.interrupter.check(method, "before")
            result = target(*args, **kwargs)
            if method in ("list", "list_versions"):
                result = iter(list(result))
            self.interrupter.check(method, "after")
            return result

        return call
