"""Every Python block of the README runs as printed (issue 22 point 1): each script on the
session's SeaweedFS through the OBJECTSTORE_* variables a user would set, a block marked
`<!-- run with pytest -->` as a user's test file under pytest with the installed plugin,
one marked `<!-- run on a versioned bucket -->` on a bucket of its own made as the README
says (`objectstore-s3 bucket create NAME --versioned`), and the "Processes and forks"
example in test_readme_processes.py. A block that cannot run here would say why in a
`<!-- not run: ... -->` comment right above it."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings
from tests.docs.test_readme_processes import README, _example
from tests.support.cli import environment, fresh_user_environment

_BLOCK = re.compile(r"(?:<!-- (?P<marker>[^>]*?) -->\n)?```python\n(?P<code>.*?)```", re.S)
_PYTEST = "run with pytest"
_VERSIONED = "run on a versioned bucket"
_ELSEWHERE = "Processes and forks"  # run by test_readme_processes.py


@dataclass(frozen=True)
class Block:
    section: str
    marker: str
    code: str


def readme_blocks() -> list[Block]:
    """The README's Python blocks, each with its `## ` section and the comment above it."""
    blocks = []
    for part in re.split(r"^## ", README.read_text(), flags=re.M)[1:]:
        section = part.split("\n", 1)[0]
        blocks += [Block(section, m["marker"] or "", m["code"]) for m in _BLOCK.finditer(part)]
    return blocks


def _scripts() -> list[Block]:
    return [b for b in readme_blocks() if b.marker in ("", _VERSIONED) and b.section != _ELSEWHERE]


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_every_python_block_is_run_or_says_why() -> None:
    blocks = readme_blocks()
    assert [b.section for b in blocks if b.section == "Quick start"] == ["Quick start"]
    for block in blocks:
        assert block.marker in ("", _PYTEST, _VERSIONED) or re.match(
            r"not run: \S", block.marker
        ), block
    (elsewhere,) = [b for b in blocks if b.section == _ELSEWHERE]
    assert elsewhere.code == _example()  # the one test_readme_processes.py runs
    assert any(b.marker == _PYTEST for b in blocks)


@pytest.mark.seaweedfs
@pytest.mark.parametrize("block", _scripts(), ids=lambda b: b.section)
def test_each_script_block_runs_as_printed(
    block: Block, seaweed_settings: Callable[..., ObjectStoreSettings], tmp_path: Path
) -> None:
    settings = seaweed_settings()
    if block.marker == _VERSIONED:
        settings = seaweed_settings(bucket=f"readme-{uuid.uuid4().hex[:10]}")
        create = ["bucket", "create", settings.bucket, "--versioned"]  # as the README says
        made = _run(
            [sys.executable, "-m", "objectstore_s3", *create], environment(settings), tmp_path
        )
        assert made.returncode == 0, made.stderr
    script = tmp_path / "example.py"
    script.write_text(block.code)
    done = _run([sys.executable, str(script)], environment(settings), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    if block.section == "Quick start":
        _check_quick_start(done.stdout, settings, tmp_path)


def _check_quick_start(shown: str, settings: ObjectStoreSettings, tmp_path: Path) -> None:
    lines = shown.splitlines()
    assert "0/string_key b'My string'" in lines  # read_many, in the order asked
    assert lines.index("0/string_key b'My string'") + 1 == lines.index(
        '0/json_key b\'{"One":1,"Two":2}\''
    )
    (hint,) = [line for line in lines if "never_saved" in line]
    assert "store.contains_key(key)" in hint
    with ObjectStore(settings.model_copy(update={"cache_dir": tmp_path / "look"})) as look:
        assert look.read("0/string_key") == "My string"
        assert look.read("0/prices.csv") == "close,sma\n101.5,100.2\n"


def test_each_pytest_block_runs_as_a_users_test_file(tmp_path: Path) -> None:
    """With nothing configured, on the plugin's default in-memory backend."""
    blocks = [b for b in readme_blocks() if b.marker == _PYTEST]
    for number, block in enumerate(blocks):
        (tmp_path / f"test_readme_{number}.py").write_text(block.code)
    env = fresh_user_environment(tmp_path / "home")
    done = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    tests = sum(block.code.count("\ndef test_") for block in blocks)
    assert f"{tests} passed" in done.stdout
