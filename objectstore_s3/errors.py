"""The exceptions the store raises on purpose.

Each leaf derives from `ObjectStoreError` and from the builtin a caller would already
catch (`KeyNotFoundError` is a `KeyError`, ...), so existing `except KeyError:` code keeps
working. Messages name the problem and the way out.
"""

from __future__ import annotations

__all__ = [
    "BucketNotFoundError",
    "InvalidKeyError",
    "KeyNotFoundError",
    "LocalFileConflictError",
    "ObjectDecodeError",
    "ObjectStoreError",
    "StorageLimitExceededError",
    "StoragePermissionError",
    "StorageUnavailableError",
]

CONTAINS_KEY_HINT = (
    "Please use ObjectStore.ContainsKey(key) to check if an object exists before "
    "attempting to read."
)


class ObjectStoreError(Exception):
    """Base of every error the store raises on purpose."""


class InvalidKeyError(ObjectStoreError, ValueError):
    """A key that is malformed or would address something outside the organization."""


class KeyNotFoundError(ObjectStoreError, KeyError):
    """The key does not exist in the organization's Object Store."""

    def __init__(self, key: str, message: str | None = None) -> None:
        self.key = key
        super().__init__(
            message or f"The object with key '{key}' could not be found. {CONTAINS_KEY_HINT}"
        )

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message, quoting it; show it as written.
        return str(self.args[0])


class StoragePermissionError(ObjectStoreError, PermissionError):
    """The settings (or the S3 server) forbid this operation."""


class StorageLimitExceededError(ObjectStoreError):
    """A save would pass the organization's file-count or byte quota."""


class StorageUnavailableError(ObjectStoreError, ConnectionError):
    """The S3 endpoint could not be reached or kept failing after bounded retries."""


class BucketNotFoundError(StorageUnavailableError):
    """The configured bucket does not exist on the endpoint."""


class ObjectDecodeError(ObjectStoreError, ValueError):
    """A stored value could not be decoded as the requested type."""


class LocalFileConflictError(ObjectStoreError, FileExistsError):
    """A local file has unsynced changes and the bucket's copy changed too."""
