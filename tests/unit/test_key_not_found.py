"""Issue 22 point 1: a missing key's error speaks Python first, keeps LEAN's sentence word
for word (SPEC.md quotes it), and its traceback is short: no chained exception under it."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

from objectstore_s3 import KeyNotFoundError, ObjectStore, ObjectStoreSettings
from objectstore_s3.transport.memory import MemoryBackend

LEAN_SENTENCE = (
    "Please use ObjectStore.ContainsKey(key) to check if an object exists before "
    "attempting to read."
)


def test_the_message_names_the_python_check_and_keeps_leans_sentence() -> None:
    message = str(KeyNotFoundError("1/a"))
    assert message.startswith("The object with key '1/a' could not be found. ")
    assert "store.contains_key(key)" in message
    assert LEAN_SENTENCE in message


def test_a_missing_key_read_many_raises_with_a_short_traceback(tmp_path: Path) -> None:
    settings = ObjectStoreSettings(cache_dir=tmp_path / "cache", local_root=tmp_path / "local")
    with (
        ObjectStore(settings, backend=MemoryBackend()) as store,
        pytest.raises(KeyNotFoundError) as caught,
    ):
        dict(store.read_many(["1/a", "1/b"]))
    error = caught.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    shown = traceback.format_exception(error)
    assert len(shown) < 12  # a few frames of ours, one line of message
