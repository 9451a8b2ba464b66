"""Bad input, on every backend: values of the wrong type are refused by name, and values
the store cannot decode (malformed, undecodable, of the wrong shape, an entity bomb, nested
too deep) are decode errors naming the key; nothing is lost."""

from __future__ import annotations

from typing import Any

import pytest

from objectstore_s3 import (
    ObjectDecodeError,
    ObjectStore,
    ObjectStoreError,
)
from objectstore_s3.codecs import MAX_DEPTH
from tests.support.models import Insight


@pytest.mark.parametrize(
    ("body", "read"),
    [
        (b"[" * 100_000 + b"]" * 100_000, lambda s: s.read_json("deep")),
        (b"[" * 100_000 + b"]" * 100_000, lambda s: s.ReadJson[list[object]]("deep")),
        (b"<a>" * 10_000 + b"</a>" * 10_000, lambda s: s.ReadXml[dict[str, object]]("deep")),
    ],
    ids=["json", "typed-json", "typed-xml"],
)
def test_values_nested_too_deep_are_decode_errors(
    store: ObjectStore, body: bytes, read: object
) -> None:
    store.save_bytes("deep", body)
    with pytest.raises(ObjectDecodeError, match="'deep'") as caught:
        read(store)  # type: ignore[operator]
    assert isinstance(caught.value, ObjectStoreError)
    assert not isinstance(caught.value.__cause__, RecursionError) or "deep" in str(caught.value)


def test_untyped_xml_nested_too_deep_is_a_decode_error(store: ObjectStore) -> None:
    """Issue 18 break 9: an untyped read_xml of a 100,000-deep document returned an element
    (that serializing or copying then choked on); it is depth-limited like JSON, while a
    document MAX_DEPTH deep still reads, and the stored bytes stay readable."""
    deep = b"<a>" * 100_000 + b"</a>" * 100_000
    store.save_bytes("deep", deep)
    with pytest.raises(ObjectDecodeError, match="'deep'.*nests too deeply"):
        store.read_xml("deep")
    assert store.read_bytes("deep") == deep
    store.save_bytes("deepest", b"<a>" * MAX_DEPTH + b"leaf" + b"</a>" * MAX_DEPTH)
    element = store.read_xml("deepest")
    assert element.tag == "a"
    assert "".join(element.itertext()) == "leaf"


@pytest.mark.parametrize("value", [1, 2.5, {"a": 1}, [1], object()])
def test_save_wrong_type_names_save_json(store: ObjectStore, value: Any) -> None:
    store.save("k", "kept")
    with pytest.raises(TypeError, match="save_json"):
        store.save("k", value)
    assert store.read("k") == "kept"


def test_save_bytes_and_string_wrong_types(store: ObjectStore) -> None:
    with pytest.raises(TypeError, match="bytes"):
        store.save_bytes("k", "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        store.save_string("k", b"raw")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not JSON-serializable"):
        store.save_json("k", object())
    with pytest.raises(TypeError, match="Element or a mapping"):
        store.save_xml("k", [1, 2])
    with pytest.raises(TypeError, match="XML element name"):
        store.save_xml("k", {"1bad name": 1})
    assert store.keys == []


def test_undecodable_utf8_names_key(store: ObjectStore) -> None:
    store.save_bytes("bin", b"\xff\xfe\x00")
    with pytest.raises(ObjectDecodeError, match="'bin'.*utf-8") as caught:
        store.read("bin")
    assert isinstance(caught.value, ValueError)
    assert store.read_bytes("bin") == b"\xff\xfe\x00"


def test_malformed_json(store: ObjectStore) -> None:
    store.save("bad.json", "{not json")
    with pytest.raises(ObjectDecodeError, match="'bad.json'.*not valid JSON"):
        store.read_json("bad.json")


def test_json_failing_requested_type(store: ObjectStore) -> None:
    store.save_json("insights", [{"symbol": "SPY"}])
    with pytest.raises(ObjectDecodeError, match="'insights'"):
        store.ReadJson[list[Insight]]("insights")


def test_malformed_xml(store: ObjectStore) -> None:
    store.save("bad.xml", "<a><b></a>")
    with pytest.raises(ObjectDecodeError, match="'bad.xml'.*not well-formed"):
        store.read_xml("bad.xml")


def test_xml_entity_bomb_refused(store: ObjectStore) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>'
    )
    store.save("bomb.xml", bomb)
    with pytest.raises(ObjectDecodeError, match="'bomb.xml'.*unsafe"):
        store.read_xml("bomb.xml")


def test_xml_typed_mismatch(store: ObjectStore) -> None:
    store.save_xml("x", {"One": "uno"})
    with pytest.raises(ObjectDecodeError, match="does not match"):
        store.ReadXml[dict[str, int]]("x")


def test_errors_are_object_store_errors(store: ObjectStore) -> None:
    with pytest.raises(ObjectStoreError):
        store.read("missing")
    with pytest.raises(ObjectStoreError):
        store.save("a?", "x")
