"""The exceptions the store raises on purpose.

Each leaf derives from `ObjectStoreError` and from the builtin a caller would already
catch (`KeyNotFoundError` is a `KeyError`, ...), so existing `except KeyError:` code keeps
working. Messages name the problem and the way out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

__all__ = [
    "BucketNotFoundError",
    "InvalidKeyError",
    "InvalidSettingError",
    "KeyNotFoundError",
    "LocalFileConflictError",
    "LocalPathClashError",
    "LocalStorageError",
    "ObjectDecodeError",
    "ObjectStoreError",
    "OutcomeUnknownError",
    "PreconditionFailedError",
    "ServerCapabilityError",
    "StorageLimitExceededError",
    "StoragePermissionError",
    "StorageUnavailableError",
    "StoreNotTransferableError",
    "SupersededWriteError",
    "UnsafeFolderError",
    "UnsupportedOperationError",
    "VersioningNotEnabledError",
]

# Python's name first (the reader is in Python); LEAN's sentence kept word for word, as
# the spec quotes it and LEAN users search for it.
CONTAINS_KEY_HINT = (
    "Check first with store.contains_key(key) or `key in store` (LEAN: Please use "
    "ObjectStore.ContainsKey(key) to check if an object exists before attempting to read.)"
)


class ObjectStoreError(Exception):
    """Base of every error the store raises on purpose."""


class InvalidKeyError(ObjectStoreError, ValueError):
    """A key that is malformed or would address something outside the organization."""


class InvalidSettingError(ObjectStoreError, ValueError):
    """A setting with a value it cannot take (from an argument, `OBJECTSTORE_*` or `.env`).
    The message names each setting and its environment variable; `details` holds pydantic's
    error entries (their `loc` is the setting's path) for callers that name flags instead."""

    def __init__(self, message: str, details: Sequence[ErrorDetails] = ()) -> None:
        super().__init__(message)
        self.details = list(details)


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


class OutcomeUnknownError(StorageUnavailableError):
    """A write was sent but its answer never came: the server may or may not have applied
    it. The store resolves it (a HEAD compared with what was sent) before it reports."""

    def __init__(self, message: str, expected_etag: str | None = None, lost: int = 1) -> None:
        super().__init__(message)
        self.expected_etag = expected_etag  # the ETag the object has if the write landed
        self.lost = lost  # attempts sent and unanswered: each may still land (once)


class PreconditionFailedError(ObjectStoreError):
    """A conditional request lost a race (HTTP 412): the object is not as expected.
    Raised to users by conditional saves (`if_match`, `if_absent`), naming the key and
    its current ETag (`key`, `current_etag`; None when the key does not exist)."""

    def __init__(
        self, message: str, *, key: str | None = None, current_etag: str | None = None
    ) -> None:
        super().__init__(message)
        self.key = key
        self.current_etag = current_etag


class ServerCapabilityError(ObjectStoreError):
    """The S3 server lacks a feature a setting depends on (e.g. conditional writes)."""


class UnsupportedOperationError(ObjectStoreError, NotImplementedError):
    """The backend cannot do this at all (presigned URLs on the in-memory backend,
    versioning on a server without it); the message says what can."""


class VersioningNotEnabledError(ObjectStoreError):
    """An operation on versions (a restore) on a bucket whose versioning is not on."""


class SupersededWriteError(ObjectStoreError):
    """A pending write-behind save or delete was dropped because the object changed after
    it was accepted (another node's newer write wins); reported, never raised."""


class ObjectDecodeError(ObjectStoreError, ValueError):
    """A stored value could not be decoded as the requested type."""


class LocalFileConflictError(ObjectStoreError, FileExistsError):
    """A local file has unsynced changes and the bucket's copy changed too."""


class LocalPathClashError(ObjectStoreError, FileExistsError):
    """Two keys (`a` and `a/b`) whose local files cannot both exist on disk."""


class LocalStorageError(ObjectStoreError, OSError):
    """Local disk trouble (a full disk, a short write): the operation did not happen."""


NOT_TRANSFERABLE = (
    "An ObjectStore cannot be sent to another process (pickled): open one in that process "
    "with the same settings (ObjectStoreSettings can be sent)."
)


class StoreNotTransferableError(ObjectStoreError, TypeError):
    """A store sent to another process (pickled): a store belongs to the process that
    opened it; the other process opens its own with the same settings."""


class UnsafeFolderError(ObjectStoreError, PermissionError):
    """A node-local folder that another local user could write into."""
