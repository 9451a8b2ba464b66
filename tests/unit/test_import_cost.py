"""`import objectstore_s3` stays light: the libraries that are most of its time are imported
when a store is made or a value needs them, never with the package (issue 21's 100 ms).

Measured in a fresh interpreter (the test process has imported everything already)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Each of these costs 10-40 ms to import and is needed only by a store being made
# (settings), a typed or XML value (pydantic, defusedxml), a transport (boto3, obstore)
# or a ZIP (zipfile).
DEFERRED = (
    "asyncio",
    "boto3",
    "botocore",
    "defusedxml",
    "obstore",
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "zipfile",
)

PROBE = """
import json, sys
{statement}
print(json.dumps(sorted(m for m in {deferred!r} if m in sys.modules)))
"""


def imported_by(statement: str) -> list[str]:
    probe = PROBE.format(statement=statement, deferred=DEFERRED)
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return list(json.loads(out))


def test_importing_the_package_defers_the_heavy_libraries() -> None:
    assert imported_by("import objectstore_s3") == []
    assert imported_by("from objectstore_s3 import ObjectStore, ObjectStoreError") == []


def test_the_settings_arrive_when_asked_for() -> None:
    loaded = imported_by("from objectstore_s3 import ObjectStoreSettings")
    assert "pydantic_settings" in loaded


def test_a_typed_json_read_still_validates_after_a_light_import() -> None:
    statement = (
        "from objectstore_s3 import codecs\n"
        "assert codecs.decode_json(b'{\"a\": \"1\"}', dict[str, int]) == {'a': 1}\n"
        "assert codecs.Compression.unzip_bytes(codecs.Compression.zip_bytes(b'x', 'e'))"
        " == {'e': b'x'}"
    )
    assert "pydantic" in imported_by(statement)


def test_an_unknown_name_is_an_attribute_error() -> None:
    import objectstore_s3

    with pytest.raises(AttributeError, match="NoSuchThing"):
        objectstore_s3.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
