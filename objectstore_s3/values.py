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
from .lean import Generic_, ObjectStat
from .node.writer import Expect

__all__ = ["TypedValues", "expectation"]

R = TypeVar("R")


class TypedValues(ABC):
    """Saves and reads of typed values over `_save`, `_save_file` and `_load`."""

    @abstractmethod
    def _key(self, key: str) -> str:
        """The normalized key, or InvalidKeyError."""

    @abstractmethod
    def _save(self, key: str, data: bytes, expect: Expect | None = None) -> bool:
        """Store bytes under a normalized key; False if the quota refused (reported).
        `expect`: the user's precondition (written through; PreconditionFailedError)."""

    @abstractmethod
    def _save_file(self, key: str, expect: Expect | None = None) -> bool:
        """Upload the key's local file (`get_file_path`)."""

    @abstractmethod
    def _load(self, key: str, version: str | None = None) -> bytes | None:
        """The bytes of a normalized key (None: a local file with nothing written yet),
        or of one of its versions."""

    # -- saving --------------------------------------------------------------------------

    def save(
        self,
        key: str,
        value: str | bytes | bytearray | memoryview | None = None,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> bool:
        """Save text (UTF-8) or bytes; without a value, upload the file at get_file_path(key).

        `if_match=etag`: only if the object still has that ETag; `if_absent=True`: only if
        no object exists. Otherwise PreconditionFailedError (naming the current ETag).
        A conditional save is written through, in write-behind mode too.
        """
        name, expect = self._key(key), expectation(if_match, if_absent)
        if value is None:
            return self._save_file(name, expect)
        return self._save(name, _as_bytes(value), expect)

    def save_string(
        self,
        key: str,
        text: str,
        encoding: str = "utf-8",
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> bool:
        name, expect = self._key(key), expectation(if_match, if_absent)
        if not isinstance(text, str):
            raise TypeError(f"save_string() takes str, not {type(text).__name__}")
        return self._save(name, codecs.encode_text(text, encoding), expect)

    def save_bytes(
        self,
        key: str,
        data: bytes | bytearray | memoryview,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> bool:
        name, expect = self._key(key), expectation(if_match, if_absent)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(
                f"save_bytes() takes bytes, bytearray or memoryview, not {type(data).__name__}"
            )
        return self._save(name, bytes(data), expect)

    def save_json(
        self,
        key: str,
        obj: Any,
        type_: Any = None,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> bool:
        """JSON of dicts, lists, pydantic models, dataclasses, datetimes (validated if typed)."""
        name, expect = self._key(key), expectation(if_match, if_absent)
        return self._save(name, codecs.encode_json(obj, type_), expect)

    def save_xml(
        self,
        key: str,
        obj: Any,
        root: str = "root",
        type_: Any = None,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> bool:
        """XML of an `Element`, or of a mapping written as `<root><k>v</k>...</root>`.

        `type_` is what `SaveXml[T](key, obj)` passes; the value's own type decides.
        """
        name, expect = self._key(key), expectation(if_match, if_absent)
        return self._save(name, codecs.encode_xml(obj, root), expect)

    @abstractmethod
    def _put(self, key: str, data: bytes, expect: Expect | None) -> ObjectStat:
        """Write through (either mode) and return what the bucket holds now."""

    @abstractmethod
    def _update(self, key: str, change: Callable[[bytes | None], bytes], attempts: int) -> bytes:
        """Read-modify-write with conditional saves, retried on conflict."""

    def put(
        self,
        key: str,
        value: str | bytes | bytearray | memoryview,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> ObjectStat:
        """Save text or bytes now, in either write mode, and return the new object's
        stat: its `etag` is what the next `if_match` expects. Raises what `save` may
        report instead (a quota refusal) and PreconditionFailedError."""
        name, expect = self._key(key), expectation(if_match, if_absent)
        return self._put(name, _as_bytes(value), expect)

    # -- safe updates ----------------------------------------------------------------------

    def update_bytes(
        self, key: str, fn: Callable[[bytes | None], bytes], *, attempts: int = 30
    ) -> bytes:
        """Atomically replace the key's bytes with `fn(current)` (None: no object yet),
        across processes and nodes: the save is conditional on the value `fn` saw and is
        retried on a conflict (with backoff). Returns the new value."""
        name = self._key(key)

        def change(current: bytes | None) -> bytes:
            return _as_bytes(fn(current))

        return self._update(name, change, attempts)

    def update(
        self,
        key: str,
        fn: Callable[[str | None], str],
        *,
        encoding: str = "utf-8",
        attempts: int = 30,
    ) -> str:
        """`update_bytes` for text: `fn` gets the current text (None: no object)."""
        name = self._key(key)

        def change(current: bytes | None) -> bytes:
            text = (
                None
                if current is None
                else self._decode(name, codecs.decode_text, current, encoding)
            )
            return codecs.encode_text(fn(text), encoding)

        return codecs.decode_text(self._update(name, change, attempts), encoding)

    def update_json(
        self, key: str, fn: Callable[[Any], Any], type_: Any = None, *, attempts: int = 30
    ) -> Any:
        """`update_bytes` for JSON: `fn` gets the current value (validated into `type_`
        when given; None: no object) and returns the new one, saved as JSON."""
        name = self._key(key)

        def change(current: bytes | None) -> bytes:
            value = (
                None if current is None else self._decode(name, codecs.decode_json, current, type_)
            )
            return codecs.encode_json(fn(value), type_)

        return codecs.decode_json(self._update(name, change, attempts), type_)

    # -- reading -------------------------------------------------------------------------

    def read(self, key: str, encoding: str = "utf-8", *, version: str | None = None) -> str | None:
        return self.read_string(key, encoding, version=version)

    def read_string(
        self, key: str, encoding: str = "utf-8", *, version: str | None = None
    ) -> str | None:
        """The key's text; `version`: an earlier version's (see `history`)."""
        name = self._key(key)
        data = self._load(name, version)
        return None if data is None else self._decode(name, codecs.decode_text, data, encoding)

    def read_bytes(self, key: str, *, version: str | None = None) -> bytes | None:
        return self._load(self._key(key), version)

    def read_json(self, key: str, type_: Any = None, *, version: str | None = None) -> Any:
        name = self._key(key)
        data = self._load(name, version)
        return None if data is None else self._decode(name, codecs.decode_json, data, type_)

    def read_xml(self, key: str, type_: Any = None, *, version: str | None = None) -> Any:
        name = self._key(key)
        data = self._load(name, version)
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


def _as_bytes(value: object) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(
        f"save() takes str or bytes, not {type(value).__name__}; use save_json() for "
        "objects or save_xml() for XML"
    )


def expectation(if_match: str | None, if_absent: bool) -> Expect | None:
    """A save's precondition from its keywords; an ETag may be given with or without
    its quotes (as `stat().etag` shows it, or as a terminal shows it)."""
    if if_match is not None and if_absent:
        raise ValueError("Give if_match or if_absent, not both: an object cannot be both.")
    if if_absent:
        return Expect(absent=True)
    if if_match is None:
        return None
    if not isinstance(if_match, str) or not if_match.strip('"'):
        raise ValueError(f"if_match must be an ETag string (from stat(key).etag), not {if_match!r}")
    etag = if_match if if_match.startswith(('"', "W/")) else f'"{if_match}"'
    return Expect(etag=etag)
