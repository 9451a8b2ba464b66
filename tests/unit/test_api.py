"""The public surface: `__all__`, the error hierarchy, and LEAN's spellings."""

from __future__ import annotations

import pytest

import objectstore_s3
from objectstore_s3 import (
    BucketNotFoundError,
    InvalidKeyError,
    KeyNotFoundError,
    ObjectDecodeError,
    ObjectStore,
    ObjectStoreError,
    StorageLimitExceededError,
    StoragePermissionError,
    StorageUnavailableError,
)


def test_all_is_pinned() -> None:
    assert sorted(objectstore_s3.__all__) == [
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
    for name in objectstore_s3.__all__:
        assert hasattr(objectstore_s3, name)


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (InvalidKeyError, ValueError),
        (KeyNotFoundError, KeyError),
        (ObjectDecodeError, ValueError),
        (StoragePermissionError, PermissionError),
        (StorageUnavailableError, ConnectionError),
        (BucketNotFoundError, StorageUnavailableError),
        (StorageLimitExceededError, ObjectStoreError),
    ],
)
def test_errors_subclass_base_and_builtin(error: type, builtin: type) -> None:
    assert issubclass(error, ObjectStoreError)
    assert issubclass(error, builtin)


def test_key_not_found_message_is_not_quoted() -> None:
    error = KeyNotFoundError("x")
    assert str(error).startswith("The object with key 'x'")
    assert "Please use ObjectStore.ContainsKey(key)" in str(error)


PASCAL = {
    "Save": "save",
    "SaveString": "save_string",
    "SaveBytes": "save_bytes",
    "SaveJson": "save_json",
    "SaveXml": "save_xml",
    "Read": "read",
    "ReadString": "read_string",
    "ReadBytes": "read_bytes",
    "ReadJson": "read_json",
    "ReadXml": "read_xml",
    "ContainsKey": "contains_key",
    "Delete": "delete",
    "GetFilePath": "get_file_path",
    "Clear": "clear",
    "Keys": "keys",
    "MaxSize": "max_size",
    "MaxFiles": "max_files",
    "ProjectId": "project_id",
}


@pytest.mark.parametrize(("pascal", "snake"), sorted(PASCAL.items()))
def test_every_snake_case_row_has_its_pascal_alias(pascal: str, snake: str) -> None:
    assert hasattr(ObjectStore, pascal)
    assert hasattr(ObjectStore, snake)


def test_constructing_a_store_does_no_io(tmp_path: object) -> None:
    # An endpoint nothing listens on: construction must not touch it (nor start a server).
    store = ObjectStore(objectstore_s3.ObjectStoreSettings(endpoint_url="http://127.0.0.1:9"))
    assert store._node._parts is None
    assert store._node._backend is None
