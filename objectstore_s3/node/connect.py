"""From settings to a `Backend`: the endpoint (AWS, a URL, or the embedded server) and
the transport (boto3, or obstore with the `fast` extra). Imported lazily by the store, so
`import objectstore_s3` stays light.

On the embedded server (endpoint_url=local) only the default bucket is created by itself;
any other bucket must exist (a mistyped `--bucket` is an error that names it, never a new
bucket). Two guards wrap the backend (`Guarded`, one `Guard` per connection):
- endpoint_url=local: a request that fails because the server is gone (`objectstore-s3
  server stop`, killed) starts it again, as the first store did, and is tried once more;
- an http(s) endpoint with no keys configured: "no credentials" from an endpoint that
  cannot be reached at all is reported as unreachable, the first problem to fix.
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from objectstore_s3.errors import (
    BucketNotFoundError,
    ObjectStoreError,
    OutcomeUnknownError,
    StoragePermissionError,
    StorageUnavailableError,
)
from objectstore_s3.server.seaweedfs import (
    ServerState,
    local_endpoint,
    resolve_endpoint,
    start_local_server,
)
from objectstore_s3.settings import ObjectStoreSettings

if TYPE_CHECKING:
    from objectstore_s3.transport.base import Backend, Endpoint

__all__ = ["DEFAULT_BUCKET", "Guard", "Guarded", "open_backend"]

log = logging.getLogger("objectstore_s3")

# The one bucket the embedded server creates by itself: the default of the `bucket` setting.
DEFAULT_BUCKET: str = ObjectStoreSettings.model_fields["bucket"].default
# Backend methods that return an iterator: tried again only if nothing was yielded yet.
_STREAMS = frozenset({"list", "list_versions", "stale_uploads"})


def open_backend(settings: ObjectStoreSettings) -> Backend:
    """A backend on the configured bucket (starting the embedded server if it is used)."""
    local = start_local_server(settings) if settings.endpoint_url == "local" else None
    endpoint = local_endpoint(settings, local) if local else resolve_endpoint(settings)
    guard = Guard(settings, endpoint, local)
    backend = cast("Backend", Guarded(guard))
    if settings.endpoint_url == "local":
        _local_bucket(backend, settings)
    return backend


def _build(settings: ObjectStoreSettings, endpoint: Endpoint) -> Backend:
    backend = _obstore(settings, endpoint) if settings.transport == "obstore" else None
    if backend is None:
        from objectstore_s3.transport.boto3.backend import S3Backend

        backend = S3Backend(settings, endpoint)
    return backend


def _local_bucket(backend: Backend, settings: ObjectStoreSettings) -> None:
    """The embedded server starts empty: create its default bucket, versioned (an earlier
    value can be restored; a bucket whose owner suspended versioning stays so); any other
    must exist."""
    if settings.bucket == DEFAULT_BUCKET:
        backend.create_bucket(versioned=True)
        return
    try:
        next(iter(backend.list(".objectstore-s3/bucket-check/")), None)
    except BucketNotFoundError as exc:
        raise BucketNotFoundError(
            f"Bucket '{settings.bucket}' does not exist on the embedded S3 server "
            f"(endpoint_url=local), which creates only its default bucket "
            f"'{DEFAULT_BUCKET}' by itself. Create it with `objectstore-s3 bucket create "
            f"{settings.bucket}`, or check the spelling of --bucket / OBJECTSTORE_BUCKET."
        ) from exc


class Guard:
    """One connection's backend and what to do after one of its requests failed."""

    def __init__(
        self, settings: ObjectStoreSettings, endpoint: Endpoint, server: ServerState | None
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.lock = threading.Lock()
        self.generation = 0  # grows when the backend is rebuilt (a new server URL)
        self.local = server is not None  # endpoint_url=local: the embedded server
        self.keyless = settings.access_key_id is None and not self.local
        self.server_pid = server.pid if server else None
        self.root = self.run(lambda: _build(settings, endpoint))

    def run(self, request: Callable[[], Any]) -> Any:
        """`request()`, tried once more if the embedded server was found gone."""
        try:
            return request()
        except ObjectStoreError as exc:
            if not self.retries(exc):
                raise
        return request()

    def retries(self, exc: ObjectStoreError) -> bool:
        """Whether to try the failed request once more (the server was started again);
        raises a truer error instead where there is one."""
        if self.keyless and isinstance(exc, StoragePermissionError):
            _raise_if_unreachable(self.settings.endpoint_url, exc)
        if not self.local or not isinstance(exc, StorageUnavailableError):
            return False
        if isinstance(exc, OutcomeUnknownError | BucketNotFoundError):
            return False  # may have landed (the node decides), or not the server's absence
        with self.lock:
            state = start_local_server(self.settings, report=_restarting)
            if state.pid == self.server_pid:
                return False  # the server never went away: the failure is its answer
            self.server_pid = state.pid
            if state.url != self.endpoint.url:  # restarted on another port
                old, self.endpoint = self.root, local_endpoint(self.settings, state)
                self.root = _build(self.settings, self.endpoint)
                self.generation += 1
                old.close()
            return True


def _restarting(line: str) -> None:
    log.warning("The embedded S3 server was gone (stopped or killed); %s", line)


def _raise_if_unreachable(url: str, exc: StoragePermissionError) -> None:
    """No credentials, and nothing answers at `url` either: say that first."""
    parts = urlsplit(url)
    if parts.hostname is None:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=5).close()
    except OSError as problem:
        reason = problem.strerror or type(problem).__name__
        raise StorageUnavailableError(
            f"Cannot reach the S3 endpoint {url} ({reason}). Check that the server is "
            "running and OBJECTSTORE_ENDPOINT_URL points at it (or use endpoint_url=local "
            "for the embedded server). No S3 credentials are set either: set "
            "OBJECTSTORE_ACCESS_KEY_ID and OBJECTSTORE_SECRET_ACCESS_KEY for that server."
        ) from exc


class Guarded:
    """A `Backend` (any of its scopes) whose requests go through a `Guard`."""

    def __init__(self, guard: Guard, scopes: tuple[str, ...] = ()) -> None:
        self._guard = guard
        self._scopes = scopes
        self._generation = -1
        self._inner: Backend | None = None

    def _backend(self) -> Backend:
        guard = self._guard
        if self._inner is None or self._generation != guard.generation:
            backend, self._generation = guard.root, guard.generation
            for prefix in self._scopes:
                backend = backend.scoped(prefix)
            self._inner = backend
        return self._inner

    @property
    def name(self) -> str:
        return self._backend().name

    def scoped(self, prefix: str) -> Backend:
        return cast("Backend", Guarded(self._guard, (*self._scopes, prefix)))

    def close(self) -> None:
        self._backend().close()

    def __repr__(self) -> str:
        return f"Guarded({self._backend()!r})"

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._backend(), attribute)
        if not callable(value):
            return value
        if attribute in _STREAMS:
            return functools.partial(self._stream, attribute)
        return functools.partial(self._call, attribute)

    def _call(self, attribute: str, *args: Any, **kwargs: Any) -> Any:
        return self._guard.run(lambda: getattr(self._backend(), attribute)(*args, **kwargs))

    def _stream(self, attribute: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        yielded = False
        try:
            for item in getattr(self._backend(), attribute)(*args, **kwargs):
                yielded = True
                yield item
            return
        except ObjectStoreError as exc:
            if not self._guard.retries(exc) or yielded:
                raise  # (a server started again serves the next call)
        yield from getattr(self._backend(), attribute)(*args, **kwargs)


def _obstore(settings: ObjectStoreSettings, endpoint: Endpoint) -> Backend:
    try:
        from objectstore_s3.transport.obstore.backend import ObstoreBackend
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "obstore":
            raise
        raise ObjectStoreError(
            "OBJECTSTORE_TRANSPORT=obstore needs the obstore package, which is not "
            "installed: pip install 'objectstore-s3[fast]' (or set "
            "OBJECTSTORE_TRANSPORT=boto3)."
        ) from exc
    return ObstoreBackend(settings, endpoint)
