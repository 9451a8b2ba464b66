"""Typed views over bytes: text, JSON, XML, ZIP. Pure: no I/O.

Decoders raise `ObjectDecodeError` with the reason; the store adds the key. JSON goes
through pydantic so models, dataclasses and datetimes serialize, and typed reads
(`list[Insight]`, `dict[str, int]`) validate. XML is parsed with defusedxml only.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

from .errors import ObjectDecodeError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

# pydantic, defusedxml and zipfile are imported by the first call that needs them, not with the
# package: they are most of `import objectstore_s3`'s time, and a store that saves and
# reads bytes never needs them.

__all__ = [
    "Compression",
    "decode_json",
    "decode_text",
    "decode_xml",
    "encode_json",
    "encode_text",
    "encode_xml",
]

BytesLike = bytes | bytearray | memoryview
MAX_DEPTH = 200  # XML reads, typed or not, nest at most this deep (JSON as deep as Python can)
_TOO_DEEP = (
    "the {kind} nests too deeply to be read as a value; read it with read_bytes() and a "
    "streaming parser"
)


def encode_text(text: object, encoding: str = "utf-8") -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    return text.encode(encoding)


def decode_text(data: bytes, encoding: str = "utf-8") -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ObjectDecodeError(
            f"the value is not valid {encoding} text ({exc.reason} at byte {exc.start}); "
            "use read_bytes() for binary data"
        ) from exc


@lru_cache(maxsize=256)
def _adapter(type_: Any) -> TypeAdapter[Any]:
    from pydantic import TypeAdapter

    return TypeAdapter(type_)


def encode_json(obj: object, type_: Any = None) -> bytes:
    """JSON of dicts, lists, pydantic models, dataclasses, datetimes; validated if typed."""
    from pydantic import ValidationError
    from pydantic_core import PydanticSerializationError, to_json

    try:
        if type_ is not None:
            adapter = _adapter(type_)
            return adapter.dump_json(adapter.validate_python(obj))
        return to_json(obj)
    except ValidationError as exc:
        raise TypeError(f"the value does not match {_type_name(type_)}: {exc}") from exc
    except PydanticSerializationError as exc:
        raise TypeError(f"{type(obj).__name__} is not JSON-serializable: {exc}") from exc


def decode_json(data: bytes, type_: Any = None) -> Any:
    try:
        if type_ is None:
            return json.loads(data)
        return _adapter(type_).validate_json(data)
    except RecursionError as exc:
        raise ObjectDecodeError(_TOO_DEEP.format(kind="JSON")) from exc
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, ValidationError
        raise ObjectDecodeError(
            f"the value is not valid JSON for {_type_name(type_)}: {exc}"
        ) from exc


def encode_xml(obj: object, root: str = "root") -> bytes:
    """XML of an Element, or of a mapping as `<root><k>v</k>...</root>` (nested mappings nest)."""
    if isinstance(obj, ET.Element):
        element = obj
    elif isinstance(obj, Mapping):
        element = _mapping_to_element(root, obj)
    else:
        raise TypeError(
            f"save_xml takes an xml.etree.ElementTree.Element or a mapping, not "
            f"{type(obj).__name__}"
        )
    return bytes(ET.tostring(element, encoding="utf-8", xml_declaration=True))


def _mapping_to_element(tag: str, mapping: Mapping[Any, Any]) -> ET.Element:
    _check_xml_name(tag)
    element = ET.Element(tag)
    for name, value in mapping.items():
        if isinstance(value, Mapping):
            element.append(_mapping_to_element(str(name), value))
            continue
        _check_xml_name(str(name))
        child = ET.SubElement(element, str(name))
        child.text = _xml_text(value)
    return element


def _xml_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _check_xml_name(name: str) -> None:
    if (
        not name
        or not (name[0].isalpha() or name[0] == "_")
        or any(not (ch.isalnum() or ch in "_-.") for ch in name)
    ):
        raise TypeError(f"{name!r} cannot be an XML element name")


def decode_xml(data: bytes, type_: Any = None) -> Any:
    """An Element, or with `type_` (e.g. `dict[str, int]`) the children as a typed value."""
    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException
    from pydantic import ValidationError

    parser = SafeET.DefusedXMLParser(target=_DepthLimitedBuilder(), forbid_dtd=True)
    try:
        parser.feed(data)
        element = parser.close()
    except DefusedXmlException as exc:
        raise ObjectDecodeError(f"the XML was refused as unsafe ({exc!r})") from exc
    except ET.ParseError as exc:
        raise ObjectDecodeError(f"the value is not well-formed XML: {exc}") from exc
    if type_ is None or type_ is ET.Element:
        return element
    try:
        return _adapter(type_).validate_python(_element_to_python(element))
    except ValidationError as exc:
        raise ObjectDecodeError(f"the XML does not match {_type_name(type_)}: {exc}") from exc


class _DepthLimitedBuilder(ET.TreeBuilder):
    """A tree builder that stops at MAX_DEPTH: a deeper element is refused while parsing,
    before a tree that recursive code (serializing, converting, copying) would choke on
    is built, whether or not the read is typed."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0

    def start(self, tag: str, attrs: dict[str, str], /) -> ET.Element:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ObjectDecodeError(_TOO_DEEP.format(kind="XML"))
        return super().start(tag, attrs)

    def end(self, tag: str, /) -> ET.Element:
        self._depth -= 1
        return super().end(tag)


def _element_to_python(element: ET.Element) -> Any:
    """The element's children as nested dicts (text at the leaves); its depth is bounded
    by the parser's (`_DepthLimitedBuilder`), so the recursion is too."""
    children = list(element)
    if not children:
        return element.text or ""
    values = {}
    for child in children:
        values[child.tag] = _element_to_python(child)
    return values


def _type_name(type_: Any) -> str:
    if type_ is None:
        return "JSON"
    return getattr(type_, "__name__", None) or repr(type_)


class Compression:
    """LEAN's `Compression.ZipBytes`: a ZIP archive of one named entry, and back."""

    @staticmethod
    def zip_bytes(data: BytesLike, entry_name: str) -> bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"zip_bytes takes bytes, not {type(data).__name__}")
        import zipfile

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(entry_name, bytes(data))
        return buffer.getvalue()

    @staticmethod
    def unzip_bytes(archive: BytesLike) -> dict[str, bytes]:
        import zipfile

        try:
            with zipfile.ZipFile(io.BytesIO(bytes(archive))) as zipped:
                return {name: zipped.read(name) for name in zipped.namelist()}
        except zipfile.BadZipFile as exc:
            raise ObjectDecodeError(f"not a ZIP archive: {exc}") from exc

    ZipBytes = zip_bytes
    UnzipBytes = unzip_bytes
