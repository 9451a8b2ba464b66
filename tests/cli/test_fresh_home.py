"""A new user's first minutes, following the README's set-up (issue 22): a fresh HOME with
its XDG folders in it, the extras the README installs, the demo on the embedded server,
and the pytest plugin in a folder of the user's own, with moto and with moto unimportable.
(The demo's output itself is checked in test_commands.py.)"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import ROOT, fresh_user_environment, stop_servers_under

USER_TEST = """
import os

from objectstore_s3.testing import backend_name


def test_my_model_is_saved(objectstore, objectstore_settings, request):
    objectstore.save("123/model", b"weights")
    assert objectstore.read_bytes("123/model") == b"weights"
    assert backend_name(request.config) == os.environ["EXPECTED_BACKEND"]
    on_moto = objectstore_settings.endpoint_url == "https://s3.amazonaws.com"
    assert on_moto == (os.environ["EXPECTED_BACKEND"] == "moto")
"""


@dataclass
class NewUser:
    home: Path
    project: Path  # a folder of the user's own, outside this checkout
    env: dict[str, str]

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            env={**self.env, **extra},
            cwd=self.project,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def hide_moto(self) -> dict[str, str]:
        """An environment where `import moto` fails as if it were not installed."""
        shim = self.home.parent / "no-moto" / "moto"
        shim.mkdir(parents=True, exist_ok=True)
        (shim / "__init__.py").write_text("raise ImportError(\"No module named 'moto'\")\n")
        return {"PYTHONPATH": str(shim.parent)}


@pytest.fixture
def user(tmp_path: Path) -> Iterator[NewUser]:
    home, project = tmp_path / "home", tmp_path / "my-algorithms"
    home.mkdir()
    project.mkdir()
    env = fresh_user_environment(home)
    env |= {
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
    }
    yield NewUser(home, project, env)
    stop_servers_under(tmp_path)


def test_the_extras_the_readme_installs_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"pip install (?:-e )?'(?:\.|objectstore-s3)\[([\w,]+)\]'", readme))
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert {"all", "dev", "testing"} <= {e for group in named for e in group.split(",")}
    for group in named:
        assert set(group.split(",")) <= set(extras), group
    assert extras["testing"] == ["moto[s3]>=5.0.20"]


@pytest.mark.seaweedfs
def test_the_demo_runs_in_a_fresh_home(user: NewUser) -> None:
    done = user.run("-m", "objectstore_s3", "demo", OBJECTSTORE_BUKET="algo-store")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "steps passed" in done.stdout
    chart = user.home / ".local" / "share" / "objectstore-s3" / ".demo" / "sma.png"
    assert f"chart: {chart}" in done.stdout
    assert chart.stat().st_size > 10_000
    # A typo in a variable is said, with the setting meant.
    assert (
        "warning: OBJECTSTORE_BUKET names no setting and is ignored: "
        "did you mean OBJECTSTORE_BUCKET?"
    ) in done.stderr
    assert list(user.project.iterdir()) == []  # nothing left in the working folder
    stopped = user.run("-m", "objectstore_s3", "server", "stop")
    assert stopped.returncode == 0, stopped.stderr


def _write_user_tests(user: NewUser, backend: str | None) -> None:
    (user.project / "test_algorithm.py").write_text(USER_TEST)
    if backend is not None:
        ini = f"[pytest]\nobjectstore_backend = {backend}\n"
        (user.project / "pytest.ini").write_text(ini)


def _pytest(user: NewUser, **extra: str) -> subprocess.CompletedProcess[str]:
    return user.run("-m", "pytest", "-q", "-p", "no:cacheprovider", **extra)


def test_the_plugin_runs_in_memory_with_moto_unimportable(user: NewUser) -> None:
    _write_user_tests(user, None)
    done = _pytest(user, EXPECTED_BACKEND="memory", **user.hide_moto())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "skipped" not in done.stdout


@pytest.mark.moto
def test_the_plugin_runs_on_moto_when_asked(user: NewUser) -> None:
    _write_user_tests(user, "moto")
    done = _pytest(user, EXPECTED_BACKEND="moto")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_moto_asked_but_missing_is_an_error_naming_the_extra(user: NewUser) -> None:
    _write_user_tests(user, "moto")
    done = _pytest(user, EXPECTED_BACKEND="moto", **user.hide_moto())
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "pip install 'objectstore-s3[testing]'" in done.stderr
    assert "passed" not in done.stdout
    assert "skipped" not in done.stdout


def test_the_option_on_the_command_line_wins(user: NewUser) -> None:
    _write_user_tests(user, "moto")
    args = ("-m", "pytest", "-q", "-p", "no:cacheprovider", "--objectstore-backend", "memory")
    done = user.run(*args, EXPECTED_BACKEND="memory", **user.hide_moto())
    assert done.returncode == 0, textwrap.shorten(done.stdout + done.stderr, 2000)
