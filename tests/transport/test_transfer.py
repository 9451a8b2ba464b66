"""Large transfers in parts (transfer.py): a retried part, and the file window it reads."""

from __future__ import annotations

import gc
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from objectstore_s3 import ObjectStore, ObjectStoreSettings
from objectstore_s3.transport.transfer import FileWindow
from tests.support.faultproxy import Fault, FaultProxy

MiB = 1024 * 1024


def test_a_window_stays_readable_after_a_buffered_reader_of_it_is_collected(
    tmp_path: Path,
) -> None:
    """Each attempt of a part wraps the window anew; the last one's collection must not
    close it for the retry."""
    path = tmp_path / "data"
    path.write_bytes(bytes(range(256)) * 64)
    fd = os.open(path, os.O_RDONLY)
    try:
        window = FileWindow(fd, 1000, 5000)
        first = io.BufferedReader(window, 1024)
        assert first.read() == path.read_bytes()[1000:6000]
        del first
        gc.collect()
        window.seek(0)
        assert io.BufferedReader(window, 1024).read() == path.read_bytes()[1000:6000]
        assert window.digest() == window.digest()  # leaves the position at the start
    finally:
        os.close(fd)


@pytest.mark.seaweedfs
def test_a_part_upload_that_fails_once_is_sent_again(
    fault_proxy: FaultProxy, seaweed_settings: Callable[..., ObjectStoreSettings], tmp_path: Path
) -> None:
    five = 5 * MiB
    settings = seaweed_settings(
        endpoint_url=fault_proxy.url,
        multipart_threshold_bytes=five,
        multipart_chunksize_bytes=five,
        max_attempts=3,
    )
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(11 * MiB))  # three parts
    # A 500 for the second part's first attempt, then a reset for the third's.
    fault_proxy.add_rule(Fault.internal_error(), method="PUT", query="partNumber=2", times=1)
    fault_proxy.add_rule(Fault.reset(), method="PUT", query="partNumber=3", times=1)
    with ObjectStore(settings) as store:
        store.upload_file("model", source)
        target = tmp_path / "copy.bin"
        store.download_file("model", target)
    assert target.read_bytes() == source.read_bytes()
    parts = [r for r in fault_proxy.requests if r.method == "PUT" and "partNumber=" in r.query]
    assert len(parts) == 5  # three parts, two of them twice
