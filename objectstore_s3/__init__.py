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
    KeyNotFoundError,
    LocalFileConflictError,
    ObjectDecodeError,
    ObjectStoreError,
    StorageLimitExceededError,
    StoragePermissionError,
    StorageUnavailableError,
)
from .settings import ObjectStoreSettings, StoragePermissions
from .store import KeyValuePair, ObjectStat, ObjectStore, StorageUsage

__version__ = "0.1.0"

__all__ = [
    "BucketNotFoundError",
    "Compression",
    "InvalidKeyError",
    "KeyNotFoundError",
    "KeyValuePair",
    "LocalFileConflictError",
    "ObjectDecodeError",
    "ObjectStat",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectStoreSettings",
    "StorageLimitExceededError",
    "StoragePermissionError",
    "StoragePermissions",
    "StorageUnavailableError",
    "StorageUsage",
    "__version__",
]
