"""Where the embedded server's own files go (issue 22, point 9): SeaweedFS's logs in its
data folder (not the system's temporary folder), rotated; a restart on other ports adds no
folder (the master's metadata has one folder, not one per master port)."""

from __future__ import annotations

from pathlib import Path

import pytest

from objectstore_s3.server.seaweedfs import SeaweedServer

pytestmark = pytest.mark.seaweedfs


def test_logs_stay_in_the_data_folder_and_restarts_add_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))  # glog's default folder for its logs
    data = tmp_path / "data"
    ports = []
    entries = []
    for _ in range(2):  # each start on fresh ports: another master port each time
        with SeaweedServer(data) as server:
            ports.append(server.port)
        entries.append(sorted(path.name for path in data.iterdir()))
    assert ports[0] != ports[1]
    assert list(temporary.iterdir()) == []
    assert entries[0] == entries[1]
    assert {"logs", "master", "weed.log"} <= set(entries[0])
    logs = [path.name for path in (data / "logs").iterdir()]
    assert any(".log.INFO." in name for name in logs), logs
