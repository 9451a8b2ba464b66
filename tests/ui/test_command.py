"""`objectstore-s3 ui` as a user runs it: one process on the real SeaweedFS server that
prints one URL with a token, serves it, opens the browser when asked (the `BROWSER`
variable names a recorder here), says a taken port in one line, and stops cleanly on
Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStoreSettings
from tests.support.cli import ROOT, environment

pytestmark = pytest.mark.seaweedfs


@pytest.fixture
def start(
    seaweed_settings: Callable[..., ObjectStoreSettings],
) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `objectstore-s3 ui ARGS` on an organization of the session's server."""
    started: list[subprocess.Popen[str]] = []

    def run(*args: str, extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "objectstore_s3", "ui", *args],
            env={**environment(seaweed_settings()), **(extra or {})},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def _url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("Object Store console: http://127.0.0.1:"), line
    return line.split(": ", 1)[1].strip()


def _stop(process: subprocess.Popen[str]) -> str:
    """Ctrl-C, then what the process said on stderr: it must end by itself, with 130 (the
    shell's code for an interrupted command) and no traceback."""
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    return err


def test_one_url_with_a_token_serves_the_console_until_ctrl_c(
    start: Callable[..., subprocess.Popen[str]],
    seaweed_settings: Callable[..., ObjectStoreSettings],
    tmp_path: Path,
) -> None:
    opened = tmp_path / "opened.txt"
    recorder = f"import sys, pathlib; pathlib.Path({str(opened)!r}).write_text(sys.argv[1])"
    process = start(
        "--read-only", "--open", extra={"BROWSER": f'{sys.executable} -c "{recorder}" %s'}
    )
    url = _url(process)
    assert "token=" in url
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with browser.open(url, timeout=30) as page:  # the token is traded for a cookie
        assert page.status == 200
        assert 'id="read-only"' in page.read().decode()
    token = url.split("token=", 1)[1]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.build_opener(urllib.request.HTTPCookieProcessor()).open(
            url.replace(token, "wrong"), timeout=30
        )
    assert refused.value.code in (401, 403)
    deadline = time.monotonic() + 30
    while not opened.exists() or not opened.read_text():
        assert time.monotonic() < deadline, "--open never opened the browser"
        time.sleep(0.05)  # a file another process writes: poll it
    assert opened.read_text() == url
    err = _stop(process)
    assert "Ctrl-C stops it." in err
    assert seaweed_settings().secret_access_key.get_secret_value() not in err  # type: ignore[union-attr]


def test_a_taken_port_is_one_line(start: Callable[..., subprocess.Popen[str]]) -> None:
    first = start()
    port = _url(first).split(":")[2].split("/")[0]
    taken = start("--port", port)
    _, err = taken.communicate(timeout=60)
    assert taken.returncode != 0
    assert err.strip().splitlines()[-1].startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in err
    _stop(first)
