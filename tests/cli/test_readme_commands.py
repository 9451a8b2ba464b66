"""Every command line in the README's "Command line" section runs as printed (issue 22):
the ```sh blocks, one line at a time through bash, in a folder holding the files they
name (model.bin, a LEAN run's storage/ folder), with the session's SeaweedFS set through
the OBJECTSTORE_* variables a user would set. Each must exit 0 and do what it says."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from objectstore_s3.server.seaweedfs import SeaweedServer
from tests.support.cli import ROOT, organization_environment

pytestmark = pytest.mark.seaweedfs

README = ROOT / "README.md"
_SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def command_lines(section: str = "Command line") -> list[str]:
    """The command lines of the README section's ```sh blocks, in order."""
    parts = re.split(r"^## ", README.read_text(), flags=re.M)
    (text,) = [part for part in parts if part.split("\n", 1)[0].strip() == section]
    return [
        line
        for block in _SH_BLOCK.findall(text)
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_the_section_shows_the_commands_people_know() -> None:
    words = {word for line in command_lines() for word in line.split()}
    assert {"put", "get", "ls", "du", "cp", "mv", "sync", "presign", "versions", "bucket"} <= words


def test_every_command_line_runs_as_printed(seaweed: SeaweedServer, tmp_path: Path) -> None:
    env = organization_environment(seaweed, tmp_path)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    work = tmp_path / "work"
    model = random.Random(22).randbytes(100_000)
    (work / "storage" / "models").mkdir(parents=True)
    (work / "model.bin").write_bytes(model)
    (work / "storage" / "sma-values.json").write_text('{"2024-01-02": 471.2}')
    (work / "storage" / "models" / "forest.pkl").write_bytes(model[:5000])
    outputs = {}
    for line in command_lines():
        done = subprocess.run(
            ["bash", "-c", line], cwd=work, env=env, capture_output=True, timeout=300, check=False
        )
        assert done.returncode == 0, (line, done.stderr.decode())
        outputs[line] = done.stdout.decode()
    assert (work / "model-copy.bin").read_bytes() == model
    assert (work / "archive" / "model").read_bytes() == model
    presigned = next(out for line, out in outputs.items() if " presign " in line)
    assert presigned.startswith("http://127.0.0.1:")
    status = next(out for line, out in outputs.items() if " bucket status" in line)
    assert json.loads(status)["exists"] is True
    listed = subprocess.run(
        ["objectstore-s3", "ls", "123/storage/"], cwd=work, env=env, capture_output=True, check=True
    )
    assert listed.stdout.decode().split() == [
        "123/storage/models/forest.pkl",
        "123/storage/sma-values.json",
    ]
