"""The README's versions example (roll a model back after a bad overwrite, undelete it)
runs as written (issue 19): in this process on a versioned in-memory bucket, and as its
own script on a versioned SeaweedFS bucket configured from the environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import objectstore_s3
from objectstore_s3 import ObjectStore, ObjectStoreSettings
from objectstore_s3.transport.memory import MemoryBackend, MemoryBucket
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
    script = tmp_path / "versions_example.py"
    script.write_text(_example())
    secret = settings.secret_access_key
    env = {
        **os.environ,
        "OBJECTSTORE_ENDPOINT_URL": settings.endpoint_url,
        "OBJECTSTORE_BUCKET": settings.bucket,
        "OBJECTSTORE_ACCESS_KEY_ID": settings.access_key_id or "",
        "OBJECTSTORE_SECRET_ACCESS_KEY": secret.get_secret_value() if secret else "",
        "OBJECTSTORE_ORGANIZATION_ID": settings.organization_id,
        "OBJECTSTORE_CACHE_DIR": str(settings.cache_dir),
        "OBJECTSTORE_LOCAL_ROOT": str(settings.local_root),
    }
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with ObjectStore(settings.model_copy(update={"cache_dir": tmp_path / "look"})) as look:
        _check(done.stdout, look)
