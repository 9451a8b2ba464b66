"""Stores on the session's SeaweedFS server for the tests of data kept safe across crashes
and races (issue 9): the `settings` and `stores` fixtures (a folder's conftest imports them),
an observer that always asks the bucket, and scripts run in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from objectstore_s3 import (
    ObjectStore,
    ObjectStoreSettings,
)
from tests.support.worker import ROOT, settings_json

MiB = 1024 * 1024


Factory = Callable[..., ObjectStoreSettings]


@pytest.fixture
def settings(seaweed_settings: Factory) -> Factory:
    return seaweed_settings


@pytest.fixture
def stores(settings: Factory) -> Iterator[Callable[..., ObjectStore]]:
    opened: list[ObjectStore] = []

    def open_store(**overrides: object) -> ObjectStore:
        on_error = overrides.pop("on_error", None)
        store = ObjectStore(settings(**overrides), on_error=on_error)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        if not store._node.closed:
            store.close()


def observer(stores: Callable[..., ObjectStore], tmp_path: Path) -> ObjectStore:
    """Another machine that always asks the bucket."""
    return stores(cache_dir=tmp_path / "observer", cache_revalidate=True)


def run_script(settings: ObjectStoreSettings, script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, settings_json(settings), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


HEADER = (
    "import json, sys, time\n"
    "from pathlib import Path\n"
    "from objectstore_s3 import ObjectStore, ObjectStoreSettings\n"
    "settings = ObjectStoreSettings(**json.loads(sys.argv[1]))\n"
)


def run_node(
    settings: Factory, tmp_path: Path, interval: float, body: str
) -> subprocess.Popen[str]:
    """`body` run after HEADER in a subprocess, as the node whose cache is tmp_path/"node"
    and which syncs every `interval` seconds."""
    node = settings(persistence_interval_seconds=interval, cache_dir=tmp_path / "node")
    return run_script(node, HEADER + body)
