"""The store's contract, run unchanged on moto and on a real SeaweedFS server.

Every row of the SPEC's API table in both spellings, typed data, organization isolation,
iteration, permissions, and bad input (which must raise clearly and lose nothing).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from objectstore_s3 import (
    Compression,
    InvalidKeyError,
    KeyNotFoundError,
    KeyValuePair,
    ObjectStore,
    StoragePermissionError,
    StoragePermissions,
)
from tests.conftest import StoreFactory
from tests.support.helpers import file_from_another_node
from tests.support.models import Insight


@dataclasses.dataclass
class Fill:
    symbol: str
    quantity: int
    time: dt.datetime


# -- saving and reading every type -------------------------------------------------------


def test_save_and_read_string_both_spellings(store: ObjectStore) -> None:
    assert store.save("p/str", "My string") is True
    assert store.read("p/str") == "My string"
    assert store.Read("p/str") == "My string"
    assert store.SaveString("p/str2", "héllo") is True
    assert store.ReadString("p/str2") == "héllo"
    assert store.read_bytes("p/str2") == "héllo".encode()


def test_string_encoding_parameter(store: ObjectStore) -> None:
    store.save_string("p/latin", "café", encoding="latin-1")
    assert store.read_bytes("p/latin") == b"caf\xe9"
    assert store.read_string("p/latin", encoding="latin-1") == "café"


def test_bytes_types_are_stored_as_is(store: ObjectStore) -> None:
    payload = bytes(range(256))
    assert store.save_bytes("p/b1", payload)
    assert store.SaveBytes("p/b2", bytearray(payload))
    assert store.save_bytes("p/b3", memoryview(payload))
    assert store.save("p/b4", payload)
    for key in ("p/b1", "p/b2", "p/b3", "p/b4"):
        assert store.read_bytes(key) == payload
        assert store.ReadBytes(key) == payload
    assert store["p/b1"] == payload


def test_overwrite_replaces_value(store: ObjectStore) -> None:
    store.save("p/k", "one")
    store.save("p/k", "two")
    assert store.read("p/k") == "two"


def test_json_plain_values(store: ObjectStore) -> None:
    sample = {"One": 1, "Two": 2, "Three": 3}
    assert store.save_json("p/json", sample)
    assert store.read_json("p/json") == sample
    assert store.SaveJson("p/list", [1, "a", None])
    assert store.ReadJson("p/list") == [1, "a", None]


def test_json_generic_forms_validate(store: ObjectStore) -> None:
    assert store.SaveJson[dict[str, int]]("p/typed", {"One": 1})
    assert store.ReadJson[dict[str, int]]("p/typed") == {"One": 1}
    with pytest.raises(TypeError, match="does not match"):
        store.SaveJson[dict[str, int]]("p/typed2", {"One": "not a number"})
    assert not store.contains_key("p/typed2")


def test_json_models_dataclasses_datetimes(store: ObjectStore) -> None:
    when = dt.datetime(2024, 1, 2, 15, 30, tzinfo=dt.UTC)
    insights = [Insight(symbol="SPY", direction=1, period_days=5, magnitude=0.025)]
    store.save_json("p/insights", insights)
    assert store.ReadJson[list[Insight]]("p/insights") == insights
    store.save_json("p/fill", Fill("SPY", 10, when))
    raw = store.read_json("p/fill")
    assert raw == {"symbol": "SPY", "quantity": 10, "time": "2024-01-02T15:30:00Z"}
    assert store.read_json("p/fill", Fill) == Fill("SPY", 10, when)
    store.save_json("p/when", {"at": when})
    assert store.read_json("p/when", dict[str, dt.datetime]) == {"at": when}


def test_xml_from_mapping_and_back_to_typed_dict(store: ObjectStore) -> None:
    sample = {"One": 1, "Two": 2, "Three": 3}
    assert store.save_xml("p/xml", sample, root="sample")
    element = store.ReadXml("p/xml")
    assert isinstance(element, ET.Element)
    assert element.tag == "sample"
    assert {child.tag: int(child.text or 0) for child in element} == sample
    assert store.ReadXml[dict[str, int]]("p/xml") == sample
    assert store.read_xml("p/xml", dict[str, int]) == sample


def test_xml_from_element(store: ObjectStore) -> None:
    root = ET.Element("sample")
    ET.SubElement(root, "One").text = "1"
    assert store.SaveXml[ET.Element]("p/xel", root)
    assert ET.tostring(store.ReadXml[ET.Element]("p/xel")) == ET.tostring(root)


def test_zip_bytes_round_trip(store: ObjectStore) -> None:
    zipped = Compression.ZipBytes(bytes("My string", "utf-8"), "data")
    assert store.SaveBytes("p/bytesKey.zip", zipped)
    assert Compression.unzip_bytes(store.read_bytes("p/bytesKey.zip") or b"") == {
        "data": b"My string"
    }


# -- keys ----------------------------------------------------------------------------------


def test_equivalent_key_spellings_are_one_key(store: ObjectStore) -> None:
    store.save("/a\\b/c", "x")
    assert store.read("a/b/c") == "x"
    assert store.read("./a/b/c") == "x"
    assert store.keys == ["a/b/c"]


def test_keys_sorted_contains_len_and_in(store: ObjectStore) -> None:
    for key in ("b", "a/2", "a/1", "model.v2.pkl"):
        store.save(key, key)
    assert store.keys == ["a/1", "a/2", "b", "model.v2.pkl"]
    assert store.Keys == store.keys
    assert len(store) == 4
    assert "b" in store
    assert store.ContainsKey("a/1")
    assert not store.contains_key("zzz")


def test_keys_paginate_past_1000(store: ObjectStore) -> None:
    for index in range(1005):
        store.save_bytes(f"many/{index:05d}", b"")
    keys = store.keys
    assert len(keys) == 1005
    assert keys[0] == "many/00000"
    assert keys[-1] == "many/01004"


@pytest.mark.parametrize("method", ["read", "read_bytes", "read_json", "read_xml", "ReadJson"])
def test_reading_missing_key_raises_with_contains_key_hint(store: ObjectStore, method: str) -> None:
    with pytest.raises(KeyNotFoundError) as caught:
        getattr(store, method)("nope")
    assert "ObjectStore.ContainsKey(key)" in str(caught.value)
    assert isinstance(caught.value, KeyError)


def test_delete(store: ObjectStore) -> None:
    store.save("p/d", "x")
    assert store.delete("p/d") is True
    assert not store.contains_key("p/d")
    with pytest.raises(KeyNotFoundError):
        store.read("p/d")
    with pytest.raises(KeyNotFoundError):
        store.Delete("p/d")


BAD_KEYS = [
    "../prefix/x",
    "..\\prefix/x",
    "a/../b",
    "a?b",
    "a*",
    "a<b",
    "a|b",
    "a:b",
    'a"b',
    "a%b",
    "a+b",
    "é",
    "a\x00b",
    "",
    ".",
    "/",
    "a//b",
    "a/",
    "a/./b",
    "x" * 1100,
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_rejected_everywhere(store: ObjectStore, key: str) -> None:
    for call in (
        lambda: store.save(key, "x"),
        lambda: store.read(key),
        lambda: store.delete(key),
        lambda: store.contains_key(key),
        lambda: store.get_file_path(key),
        lambda: store.save_json(key, {}),
        lambda: store.read_bytes(key),
    ):
        with pytest.raises(InvalidKeyError):
            call()
    assert store.keys == []


@pytest.mark.parametrize("key", [None, 1, b"bytes", ["a"]])
def test_non_str_keys_raise_type_error_on_every_method(store: ObjectStore, key: Any) -> None:
    calls = [
        lambda: store.save(key, "x"),
        lambda: store.save_string(key, "x"),
        lambda: store.save_bytes(key, b"x"),
        lambda: store.save_json(key, {}),
        lambda: store.save_xml(key, {}),
        lambda: store.read(key),
        lambda: store.read_string(key),
        lambda: store.read_bytes(key),
        lambda: store.read_json(key),
        lambda: store.read_xml(key),
        lambda: store.contains_key(key),
        lambda: store.delete(key),
        lambda: store.get_file_path(key),
        lambda: store.ReadJson[dict[str, int]](key),
    ]
    for call in calls:
        with pytest.raises(TypeError):
            call()


def test_two_organizations_on_one_bucket_are_isolated(make_store: StoreFactory) -> None:
    one = make_store(organization_id="org-one")
    two = make_store(organization_id="org-two")
    one.save("shared/name", "from one")
    two.save("shared/name", "from two")
    assert one.read("shared/name") == "from one"
    assert two.read("shared/name") == "from two"
    one.save("only-one", "x")
    assert two.keys == ["shared/name"]
    assert not two.contains_key("only-one")


def test_prefix_maps_organization_under_it(make_store: StoreFactory) -> None:
    prefixed = make_store(prefix="team/objectstore", organization_id="org-p")
    plain = make_store(organization_id="org-p")
    prefixed.save("k", "v")
    assert plain.keys == []
    assert prefixed.keys == ["k"]


def test_project_and_organization_ids(make_store: StoreFactory) -> None:
    store = make_store(project_id=12345, organization_id="org-ids")
    assert store.project_id == store.ProjectId == 12345
    assert store.organization_id == "org-ids"
    store.save(f"{store.ProjectId}/string_key", "s")
    assert store.keys == ["12345/string_key"]


# -- iteration -------------------------------------------------------------------------------


def test_iteration_yields_sorted_pairs_once(store: ObjectStore) -> None:
    store.save("b", "2")
    store.save("a", "1")
    pairs = list(store)
    assert pairs == [KeyValuePair("a", b"1"), KeyValuePair("b", b"2")]
    key, value = pairs[0]
    assert (key, value) == ("a", b"1")
    assert (pairs[1].Key, pairs[1].Value) == ("b", b"2")


def test_delete_all_while_iterating(store: ObjectStore) -> None:
    for index in range(5):
        store.save(f"k{index}", str(index))
    seen = []
    for kvp in store:
        seen.append(kvp.Key)
        store.Delete(kvp.Key)
        if kvp.Key == "k0":
            store.Delete("k3")  # deleted ahead of the loop: skipped, not an error
    assert seen == ["k0", "k1", "k2", "k4"]
    assert store.keys == []


# -- permissions -----------------------------------------------------------------------------


def test_read_permission(make_store: StoreFactory) -> None:
    make_store().save("k", "v")
    store = make_store(permissions=StoragePermissions(read=False))
    for call in (
        lambda: store.read("k"),
        lambda: store.read_bytes("k"),
        lambda: store.contains_key("k"),
        lambda: store.keys,
        lambda: list(store),
        lambda: store.get_file_path("k"),
    ):
        with pytest.raises(StoragePermissionError, match="permission to read"):
            call()
    assert store.save("k2", "v")


def test_write_permission(make_store: StoreFactory) -> None:
    store = make_store(permissions=StoragePermissions(write=False))
    for call in (
        lambda: store.save("k", "v"),
        lambda: store.save_bytes("k", b"v"),
        lambda: store.save_json("k", {}),
        lambda: store.save_xml("k", {}),
        lambda: store.get_file_path("k"),
    ):
        with pytest.raises(
            StoragePermissionError,
            match="The current user does not have permission to write to the organization "
            "Object Store. Please contact your organization administrator to request permission.",
        ):
            call()
    assert store.keys == []


def test_delete_permission(make_store: StoreFactory) -> None:
    writer = make_store()
    writer.save("k", "v")
    store = make_store(permissions=StoragePermissions(delete=False))
    with pytest.raises(StoragePermissionError, match="permission to delete") as caught:
        store.delete("k")
    assert isinstance(caught.value, PermissionError)
    assert store.read("k") == "v"


# -- local files (the API row; issue-level behaviour is in test_localfiles) -------------------


def test_get_file_path_new_key_registers(store: ObjectStore, tmp_path: Path) -> None:
    path = Path(store.GetFilePath("abc/12 3/test"))
    assert path.is_absolute()
    assert path.parent.is_dir()
    assert path.is_relative_to(store.settings.local_root.resolve())
    assert store.contains_key("abc/12 3/test")
    assert store.keys == ["abc/12 3/test"]
    assert store.read("abc/12 3/test") is None
    assert store.delete("abc/12 3/test") is True
    assert not store.contains_key("abc/12 3/test")


def test_get_file_path_existing_and_save_back(make_store: StoreFactory, tmp_path: Path) -> None:
    folders = {"cache_dir": tmp_path / "b-cache", "local_root": tmp_path / "b-local"}
    node_a, node_b, path = file_from_another_node(make_store, "model.bin", b"weights-v1", **folders)
    assert path.read_bytes() == b"weights-v1"
    path.write_bytes(b"weights-v2")
    assert node_b.read_bytes("model.bin") == b"weights-v2"  # unsynced local content
    assert node_b.save("model.bin") is True
    node_a.clear()
    assert node_a.read_bytes("model.bin") == b"weights-v2"


def test_save_without_file_raises_file_not_found(store: ObjectStore) -> None:
    path = store.get_file_path("nofile")
    with pytest.raises(FileNotFoundError, match="nofile"):
        store.save("nofile")
    with pytest.raises(FileNotFoundError, match=path.replace("\\", "/").split("/")[-1]):
        store.Save("nofile", None)


def test_json_round_trip_through_file(store: ObjectStore) -> None:
    path = Path(store.get_file_path("cfg.json"))
    path.write_text(json.dumps({"a": 1}))
    store.flush()
    store.clear()
    assert store.read_json("cfg.json") == {"a": 1}


def test_transfers_report_progress_in_bytes(make_store: StoreFactory, tmp_path: Path) -> None:
    """download_file, upload_file and get_file_path call `progress(n)` with the bytes
    moved (issue 22: the CLI's progress bars), summing to the object's size."""
    store = make_store()
    data = bytes(range(256)) * 4096 * 6  # 6 MiB: multipart where the transport parts
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    moved: dict[str, list[int]] = {"up": [], "down": [], "file": []}
    assert store.upload_file("m/model.bin", source, progress=moved["up"].append)
    store.download_file("m/model.bin", tmp_path / "copy.bin", progress=moved["down"].append)
    node = make_store(cache_dir=tmp_path / "other-node", local_root=tmp_path / "other-files")
    path = node.get_file_path("m/model.bin", progress=moved["file"].append)
    assert Path(path).read_bytes() == data
    assert (tmp_path / "copy.bin").read_bytes() == data
    assert {name: sum(steps) for name, steps in moved.items()} == dict.fromkeys(moved, len(data))
