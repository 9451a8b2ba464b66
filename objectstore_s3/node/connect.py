"""From settings to a `Backend`: the endpoint (AWS, a URL, or the embedded server) and
the transport (boto3, or obstore with the `fast` extra). Imported lazily by the store, so
`import objectstore_s3` stays light."""

from __future__ import annotations

from typing import TYPE_CHECKING

from objectstore_s3.errors import ObjectStoreError
from objectstore_s3.server.seaweedfs import resolve_endpoint

if TYPE_CHECKING:
    from objectstore_s3.settings import ObjectStoreSettings
    from objectstore_s3.transport.base import Backend, Endpoint

__all__ = ["open_backend"]


def open_backend(settings: ObjectStoreSettings) -> Backend:
    """A backend on the configured bucket (starting the embedded server if it is used)."""
    endpoint = resolve_endpoint(settings)
    backend = _obstore(settings, endpoint) if settings.transport == "obstore" else None
    if backend is None:
        from objectstore_s3.transport.boto3.backend import S3Backend

        backend = S3Backend(settings, endpoint)
    if settings.endpoint_url == "local":
        backend.create_bucket()  # the embedded server starts empty
    return backend


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
