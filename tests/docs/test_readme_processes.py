"""The README's "Processes and forks" example runs as written (issue 18): a process pool
whose workers open their own store from the settings they were sent, on SeaweedFS."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings
from tests.support.worker import ROOT

README = ROOT / "README.md"


def _example() -> str:
    text = README.read_text()
    section = text.split("## Processes and forks", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the section has one Python example"
    return blocks[0]


@pytest.mark.seaweedfs
def test_the_process_pool_example_runs_as_written(
    seaweed_settings: Callable[..., ObjectStoreSettings], tmp_path: Path
) -> None:
    settings = seaweed_settings()
    script = tmp_path / "pool_example.py"
    script.write_text(_example())
    env = {
        **os.environ,
        "OBJECTSTORE_ENDPOINT_URL": settings.endpoint_url,
        "OBJECTSTORE_BUCKET": settings.bucket,
        "OBJECTSTORE_ACCESS_KEY_ID": settings.access_key_id or "",
        "OBJECTSTORE_SECRET_ACCESS_KEY": settings.secret_access_key.get_secret_value()
        if settings.secret_access_key
        else "",
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
    assert done.stdout.strip() == "['SPY', 'QQQ']"
    with ObjectStore(settings.model_copy(update={"cache_dir": tmp_path / "look"})) as look:
        assert look.read_json("models/SPY") == {"symbol": "SPY"}
        assert look.read_json("models/QQQ") == {"symbol": "QQQ"}
