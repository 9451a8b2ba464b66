"""Values the store refuses to decode: nested too deep for JSON or XML, on every backend."""

from __future__ import annotations

import pytest

from objectstore_s3 import (
    ObjectDecodeError,
    ObjectStore,
    ObjectStoreError,
)


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
