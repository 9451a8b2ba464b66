"""The typed values of the store: text, bytes, JSON and XML, saved and read through three
primitives (minimalkv's shape: a public method validates its value, encodes or decodes
it, and calls one primitive). `ObjectStore` provides the primitives (the node's writer
and view); the codecs are pure (codecs.py). LEAN's PascalCase names sit beside the
methods they name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

from . import codecs
from .errors import KeyNotFoundError, ObjectDecodeError
from .lean import Generic_

__all__ = ["TypedValues"]

R = TypeVar("R")


class TypedValues(ABC):
    """Saves and reads of typed values over `_save`, `_save_file` and `_load`."""

    @abstractmethod
    def _key(self, key: str) -> str:
        """The normalized key, or InvalidKeyError."""

    @abstractmethod
    def _save(self, key: str, data: bytes) -> bool:
        """Store bytes under a normalized key; False if the quota refused (reported)."""

    @abstractmethod
    def _save_file(self, key: str) -> bool:
        """Upload the key's local file (`get_file_path`)."""

    @abstractmethod
    def _load(self, key: str) -> bytes | None:
        """The bytes of a normalized key (None: a local file with nothing written yet)."""

    # -- saving --------------------------------------------------------------------------

    def save(self, key: str, value: str | bytes | bytearray | memoryview | None = None) -> bool:
        """Save text (UTF-8) or bytes; without a value, upload the file at get_file_path(key)."""
        name = self._key(key)
        if value is None:
            return self._save_file(name)
        if isinstance(value, str):
            return self._save(name, value.encode("utf-8"))
        if isinstance(value, bytes | bytearray | memoryview):
            return self._save(name, bytes(value))
        raise TypeError(
            f"save() takes str or bytes, not {type(value).__name__}; use save_json() for "
            "objects or save_xml() for XML"
        )

    def save_string(self, key: str, text: str, encoding: str = "utf-8") -> bool:
        name = self._key(key)
        if not isinstance(text, str):
            raise TypeError(f"save_string() takes str, not {type(text).__name__}")
        return self._save(name, codecs.encode_text(text, encoding))

    def save_bytes(self, key: str, data: bytes | bytearray | memoryview) -> bool:
        name = self._key(key)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(
                f"save_bytes() takes bytes, bytearray or memoryview, not {type(data).__name__}"
            )
        return self._save(name, bytes(data))

    def save_json(self, key: str, obj: Any, type_: Any = None) -> bool:
        """JSON of dicts, lists, pydantic models, dataclasses, datetimes (validated if typed)."""
        name = self._key(key)
        return self._save(name, codecs.encode_json(obj, type_))

    def save_xml(self, key: str, obj: Any, root: str = "root", type_: Any = None) -> bool:
        """XML of an `Element`, or of a mapping written as `<root><k>v</k>...</root>`.

        `type_` is what `SaveXml[T](key, obj)` passes; the value's own type decides.
        """
        name = self._key(key)
        return self._save(name, codecs.encode_xml(obj, root))

    # -- reading -------------------------------------------------------------------------

    def read(self, key: str, encoding: str = "utf-8") -> str | None:
        return self.read_string(key, encoding)

    def read_string(self, key: str, encoding: str = "utf-8") -> str | None:
        name = self._key(key)
        data = self._load(name)
        return None if data is None else self._decode(name, codecs.decode_text, data, encoding)

    def read_bytes(self, key: str) -> bytes | None:
        return self._load(self._key(key))

    def read_json(self, key: str, type_: Any = None) -> Any:
        name = self._key(key)
        data = self._load(name)
        return None if data is None else self._decode(name, codecs.decode_json, data, type_)

    def read_xml(self, key: str, type_: Any = None) -> Any:
        name = self._key(key)
        data = self._load(name)
        return None if data is None else self._decode(name, codecs.decode_xml, data, type_)

    @staticmethod
    def _decode(key: str, decoder: Callable[..., R], data: bytes, *args: Any) -> R:
        try:
            return decoder(data, *args)
        except ObjectDecodeError as exc:
            raise ObjectDecodeError(f"Object Store key '{key}': {exc}") from exc

    def __getitem__(self, key: str) -> bytes:
        value = self.read_bytes(key)
        if value is None:
            raise KeyNotFoundError(key, f"The key '{key}' has a local file with no content yet.")
        return value

    # -- LEAN's PascalCase names ---------------------------------------------------------

    Save = save
    SaveString = save_string
    SaveBytes = save_bytes
    SaveJson: Generic_[bool] = Generic_(save_json)
    SaveXml: Generic_[bool] = Generic_(save_xml)
    Read = read
    ReadString = read_string
    ReadBytes = read_bytes
    ReadJson: Generic_[Any] = Generic_(read_json)
    ReadXml: Generic_[Any] = Generic_(read_xml)
