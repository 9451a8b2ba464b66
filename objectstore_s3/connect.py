"""From settings to a `Backend`: the endpoint (AWS, a URL, or the embedded server) and
the transport. Imported lazily by the store, so `import objectstore_s3` stays light."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .server import resolve_endpoint

if TYPE_CHECKING:
    from .backend import Backend
    from .settings import ObjectStoreSettings

__all__ = ["open_backend"]


def open_backend(settings: ObjectStoreSettings) -> Backend:
    """A backend on the configured bucket (starting the embedded server if it is used)."""
    endpoint = resolve_endpoint(settings)
    from .s3 import S3Backend

    backend = S3Backend(settings, endpoint)
    if settings.endpoint_url == "local":
        backend.create_bucket()  # the embedded server starts empty
    return backend
