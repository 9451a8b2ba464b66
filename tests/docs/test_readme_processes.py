"""The README's "Processes and forks" example runs as written (issue 18): a process pool
whose workers open their own store from the settings they were sent, on SeaweedFS."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings
from tests.docs.scripts import run_example
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
    output = run_example(_example(), settings, tmp_path, "pool_example.py")
    assert output.strip() == "['SPY', 'QQQ']"
    with ObjectStore(settings.model_copy(update={"cache_dir": tmp_path / "look"})) as look:
        assert look.read_json("models/SPY") == {"symbol": "SPY"}
        assert look.read_json("models/QQQ") == {"symbol": "QQQ"}
