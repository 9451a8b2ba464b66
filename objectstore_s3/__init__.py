"""objectstore-s3: QuantConnect's Object Store for trading algorithms, on any S3 bucket.

from objectstore_s3 import ObjectStore
store = ObjectStore()                # settings from OBJECTSTORE_* env / .env
store.save("123/model", b"...")
store.read_bytes("123/model")
"""

from typing import TYPE_CHECKING, Any

from .codecs import Compression
from .errors import (
    BucketNotFoundError,
    InvalidKeyError,
    InvalidSettingError,
    KeyNotFoundError,
    LocalFileConflictError,
    LocalPathClashError,
    LocalStorageError,
    ObjectDecodeError,
    ObjectStoreError,
    PreconditionFailedError,
    ServerCapabilityError,
    StorageLimitExceededError,
    StoragePermissionError,
    StorageUnavailableError,
    StoreNotTransferableError,
    SupersededWriteError,
    UnsafeFolderError,
    UnsupportedOperationError,
    VersioningNotEnabledError,
)
from .lean import KeyVersion, LedgerHealth, NodeStatus
from .store import KeyValuePair, ObjectStat, ObjectStore, StorageUsage

if TYPE_CHECKING:
    from .settings import ObjectStoreSettings, StoragePermissions

__version__ = "0.1.0"

__all__ = [
    "BucketNotFoundError",
    "Compression",
    "InvalidKeyError",
    "InvalidSettingError",
    "KeyNotFoundError",
    "KeyValuePair",
    "KeyVersion",
    "LedgerHealth",
    "LocalFileConflictError",
    "LocalPathClashError",
    "LocalStorageError",
    "NodeStatus",
    "ObjectDecodeError",
    "ObjectStat",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectStoreSettings",
    "PreconditionFailedError",
    "ServerCapabilityError",
    "StorageLimitExceededError",
    "StoragePermissionError",
    "StoragePermissions",
    "StorageUnavailableError",
    "StorageUsage",
    "StoreNotTransferableError",
    "SupersededWriteError",
    "UnsafeFolderError",
    "UnsupportedOperationError",
    "VersioningNotEnabledError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """The settings classes, imported on first use: pydantic-settings is a third of the
    package's import time, and a store made without settings imports them itself."""
    if name in ("ObjectStoreSettings", "StoragePermissions"):
        from . import settings

        return getattr(settings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
