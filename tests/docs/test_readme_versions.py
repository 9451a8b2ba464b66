"""The README's versions example (roll a model back after a bad overwrite, undelete it)
runs as written (issue 19): in this process on a versioned in-memory bucket, and as its
own script on a versioned SeaweedFS bucket configured from the environment."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

import objectstore_s3
from objectstore_s3 import ObjectStore, ObjectStoreSettings
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket
from tests.docs.scripts import run_example
from tests.support.worker import ROOT

README = ROOT / "README.md"
RESTORED = "{'weights': [0.4, 0.6], 'sharpe': 1.9}"


def _example() -> str:
    text = README.read_text()
    section = text.split("### Versions: undo an overwrite or a delete", 1)[1]
    section = section.split("\n## ", 1)[0].split("\n### ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the versions part has one Python example"
    return blocks[0]


def _check(output: str, store: ObjectStore) -> None:
    lines = output.strip().splitlines()
    assert len(lines) == 4  # two versions listed, the value looked at, the value undeleted
    assert "current" in lines[0]
    assert lines[2] == lines[3] == RESTORED
    history = store.history("models/spy")
    assert (history[0].is_current, history[0].deleted) == (True, False)
    # Within one second of Last-Modified, S3 listings cannot order a marker among values.
    assert sorted((v.is_current, v.deleted) for v in history[1:]) == [
        (False, False),
        (False, False),
        (False, False),
        (False, True),
    ]
    assert store.read_json("models/spy") == {"weights": [0.4, 0.6], "sharpe": 1.9}


def test_the_versions_example_runs_on_a_versioned_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = MemoryBucket(versioning="enabled")
    settings = ObjectStoreSettings(
        organization_id="readme", cache_dir=tmp_path / "cache", local_root=tmp_path / "files"
    )

    def opened() -> ObjectStore:
        return ObjectStore(settings, backend=MemoryBackend(bucket))

    monkeypatch.setattr(objectstore_s3, "ObjectStore", opened)
    exec(compile(_example(), "README.md", "exec"), {"__name__": "__main__"})  # noqa: S102
    monkeypatch.undo()
    with opened() as look:
        _check(capsys.readouterr().out, look)


@pytest.mark.seaweedfs
def test_the_versions_example_runs_as_a_script_on_seaweedfs(
    seaweed_settings: Callable[..., ObjectStoreSettings], tmp_path: Path
) -> None:
    from objectstore_s3.node.connect import open_backend

    settings = seaweed_settings(bucket="readme-versions")
    root = open_backend(settings)
    try:
        root.create_bucket(versioned=True)
    finally:
        root.close()
    output = run_example(_example(), settings, tmp_path)
    with ObjectStore(settings.model_copy(update={"cache_dir": tmp_path / "look"})) as look:
        _check(output, look)
