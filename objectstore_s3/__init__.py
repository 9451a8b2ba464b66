"""objectstore-s3: QuantConnect's Object Store for trading algorithms, on any S3 bucket.

from objectstore_s3 import ObjectStore
store = ObjectStore()                # settings from OBJECTSTORE_* env / .env
store.save("123/model", b"...")
store.read_bytes("123/model")
"""

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
from .settings import ObjectStoreSettings, StoragePermissions
from .store import KeyValuePair, ObjectStat, ObjectStore, StorageUsage

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
